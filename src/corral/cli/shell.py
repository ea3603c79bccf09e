"""``corral shell``: an interactive prompt over the control socket, in its own process.

Each line is a corral command without the word ``corral`` (``start web``, ``status``,
``logs web -f``), run as the CLI runs it and answered as the CLI answers; events are printed
as they arrive (``--no-events``: not), above the line being typed. On a terminal it keeps a
readline history and completes verbs, flags and live service names (the completion of
``corral completion``); from a pipe it reads one command a line, without a prompt. EOF (or
``exit``) leaves the shell and the daemon running; the shell exits with the status of the
last command, as ``sh`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from corral.errors import EXIT_OK, EXIT_USAGE, reported

if TYPE_CHECKING:
    from corral.control.api import Stream
    from corral.control.records import Event

PROMPT = "corral> "
#: Commands that make no sense inside the shell.
NOT_HERE = {
    "up": "run `corral up` in another terminal (or `corral up -d`)",
    "shell": "already in the shell",
    "tui": "run `corral tui` in another terminal",
}
LEAVE = frozenset({"exit", "quit"})
HISTORY_LENGTH = 1000


def shell_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-events", action="store_true", help="do not print events as they arrive")


def cmd_shell(args: argparse.Namespace) -> int:
    from corral.control.client import Connection
    from corral.control.paths import client_socket

    path = os.path.abspath(client_socket(args.socket))
    with Connection(path) as connection:  # no daemon: say so now, not at the first command
        connection.request("hello")
    shell = Shell(path, args.build_parser, sys.stdin.isatty() and sys.stdout.isatty())
    return shell.run(events=not args.no_events)


class Shell:
    """The prompt, the commands it runs, and the events printed between them."""

    def __init__(
        self, socket: str, build_parser: Callable[..., argparse.ArgumentParser], interactive: bool
    ) -> None:
        self.socket = socket
        self.build_parser = build_parser
        self.interactive = interactive
        import threading  # here, not at the top: main.py loads this module for its parser

        #: Held while a command runs (events wait for it) and while an event is printed.
        self.output = threading.Lock()
        self.reading = False  # the prompt is on the screen, waiting for a line
        self._drawing = False  # the prompt is being drawn: ``output`` is held for it
        self.status = EXIT_OK

    def run(self, events: bool) -> int:
        stream = self._follow_events() if events else None
        history = self._start_readline() if self.interactive else None
        try:
            while (line := self._read()) is not None:
                if not self.execute(line):
                    break
        finally:
            if stream is not None:
                stream.close()
            if history is not None:
                _save_history(history)
        return self.status

    def _read(self) -> str | None:
        """The next line typed; None at EOF. ^C at the prompt drops the line being typed."""
        if not self.interactive:
            line = sys.stdin.readline()
            return line if line else None
        while True:
            try:
                return input(PROMPT)
            except EOFError:
                print()
                return None
            except KeyboardInterrupt:
                print("^C")
            finally:
                self._prompt_gone()

    # readline's hooks: from just before the prompt is drawn until it is on the screen (and
    # the terminal in raw mode), no event is printed; from then until the line is taken,
    # one is printed above the line being typed, which is then drawn again.

    def _prompt_coming(self) -> None:
        self.output.acquire()
        self._drawing = True

    def _prompt_shown(self) -> None:
        self.reading = True
        if self._drawing:
            self._drawing = False
            self.output.release()

    def _prompt_gone(self) -> None:
        if self._drawing:  # interrupted while the prompt was drawn
            self._drawing = False
            self.output.release()
        with self.output:
            self.reading = False

    def execute(self, line: str) -> bool:
        """Run one line; False when it asks to leave."""
        import shlex

        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            self._say(f"corral: {exc}")
            self.status = EXIT_USAGE
            return True
        if words[:1] == ["corral"]:  # typed out of habit: the same command
            words = words[1:]
        if not words:
            return True
        if words[0] in LEAVE:
            return False
        with self.output:
            self.status = self._command(words)
            sys.stdout.flush()
        return True

    def _command(self, words: list[str]) -> int:
        if words[0] in ("help", "?"):
            sys.stdout.write(self._help())
            return EXIT_OK
        if words[0] in NOT_HERE:
            self._say(f"corral: {words[0]}: {NOT_HERE[words[0]]}")
            return EXIT_USAGE
        parser = self.build_parser(words[0])
        try:
            parsed = parser.parse_args(["--socket", self.socket, *words])
        except SystemExit as exc:  # argparse said what was wrong (or printed --help)
            return int(exc.code or 0)
        return reported(lambda: int(parsed.func(parsed)))

    def _help(self) -> str:
        verbs = next(
            a for a in self.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
        )
        lines = [f"  {a.dest:<12} {a.help or ''}\n" for a in verbs._choices_actions]
        lines = [line for line in lines if line.split()[0] not in NOT_HERE]
        return (
            "Commands (as `corral COMMAND`, without the corral; COMMAND -h says more):\n"
            + "".join(lines)
            + "  exit         leave the shell (so does EOF); the daemon keeps running\n"
        )

    def _say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # -- events ------------------------------------------------------------------------------

    def _follow_events(self) -> Stream[Event]:
        """Subscribe now (what a first command causes is shown), then print in a thread."""
        from corral.control.api import Client

        stream = Client(self.socket).events()
        stream.__enter__()
        import threading

        threading.Thread(target=self._print_events, args=(stream,), daemon=True).start()
        return stream

    def _print_events(self, stream: Stream[Event]) -> None:
        for event in stream:
            self._show(describe_event(event.time, event.name, event.env))
        if stream.daemon_gone:
            self._show("corral: the daemon has exited; commands will fail until it is back")

    def _show(self, text: str) -> None:
        """Print a line without mangling the one being typed: above it, then redrawn."""
        with self.output:
            if self.reading:
                sys.stdout.write("\r\x1b[K" + text + "\n" + PROMPT + _line_buffer())
            else:
                sys.stdout.write(text + "\n")
            sys.stdout.flush()

    # -- readline ----------------------------------------------------------------------------

    def _start_readline(self) -> str | None:
        """History from the last session, and TAB completion; the history file's path."""
        try:
            import readline
        except ImportError:  # an interpreter built without it: a plain prompt
            return None
        if hasattr(readline, "set_pre_input_hook"):  # GNU readline; libedit has not
            readline.set_startup_hook(self._prompt_coming)
            readline.set_pre_input_hook(self._prompt_shown)
        readline.set_completer_delims(" \t\n")
        readline.set_completer(Completer(self.socket, self.build_parser).complete)
        readline.parse_and_bind("tab: complete")
        path = history_path()
        try:
            readline.read_history_file(path)
        except OSError:
            pass
        readline.set_history_length(HISTORY_LENGTH)
        return path


class Completer:
    """readline's completer: the candidates ``corral completion`` offers, for ``corral LINE``."""

    def __init__(self, socket: str, build_parser: Callable[..., argparse.ArgumentParser]) -> None:
        self.socket = socket
        self.build_parser = build_parser
        self._parser: argparse.ArgumentParser | None = None
        self._matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            self._matches = self.matches(_line_buffer()[: _cursor()])
            if len(self._matches) == 1 and not self._matches[0].endswith("/"):
                self._matches[0] += " "  # Python's readline appends no space itself
        return self._matches[state] if state < len(self._matches) else None

    def matches(self, line: str) -> list[str]:
        from corral.cli.completion import candidates, live_names

        if self._parser is None:
            self._parser = self.build_parser()
        done = candidates(self._parser, "corral " + line, lambda s: live_names(s or self.socket))
        if done.files:
            return _paths(line.rpartition(" ")[2])
        return [c.word for c in done.candidates]


def _paths(text: str) -> list[str]:
    """Paths starting with ``text`` (directories with a slash), for options that take one."""
    import glob

    return [p + "/" if os.path.isdir(p) else p for p in sorted(glob.glob(glob.escape(text) + "*"))]


def describe_event(when: float, name: str, env: Mapping[str, str]) -> str:
    """``event 12:00:01.250 started JOB=web INSTANCE=``, as ``corral events`` says it."""
    import time

    stamp = time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1000):03d}"
    pairs = " ".join(f"{k}={v}" for k, v in env.items())
    return f"event {stamp} {name}" + (f" {pairs}" if pairs else "")


def history_path() -> str:
    """``$XDG_STATE_HOME/corral/shell_history`` (``~/.local/state`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "corral", "shell_history")


def _save_history(path: str) -> None:
    import readline

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        readline.write_history_file(path)
    except OSError:  # a read-only home: the session's history is simply not kept
        pass


def _line_buffer() -> str:
    try:
        import readline
    except ImportError:
        return ""
    return readline.get_line_buffer()


def _cursor() -> int:
    import readline

    return readline.get_endidx()
