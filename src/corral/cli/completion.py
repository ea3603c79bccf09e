"""``corral completion bash|zsh|fish``: a completion script for the shell, on stdout.

The scripts are thin: on each TAB they ask ``corral completion --line LINE`` (the command line
up to the cursor) for the candidates, so every shell completes alike, from the parser itself
(verbs, flags, choices; new commands come along by themselves) and with the service names
of the daemon that answers there (``--socket`` on the line, ``CORRAL_SOCKET``, the CLI's
lookup). ``corral shell`` completes its lines with the same ``candidates``.

The helper's answer: a first line ``words`` (then one candidate a line, ``WORD\\tHELP``) or
``files`` (the shell completes a path itself).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from corral.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

SHELLS = ("bash", "zsh", "fish")
#: Positionals with these metavars are paths; with ``NAME``, service names.
PATH_METAVARS = frozenset({"PATH", "FILE", "DIR"})
NAME_METAVAR = "NAME"
#: The verbs for which ``all`` addresses every service (docs/protocol.md).
ALL_VERBS = frozenset({"start", "stop", "restart"})
#: How long a TAB waits for the daemon's names before completing without them.
NAMES_TIMEOUT = 2.0


class Candidate:
    """One word to offer, with a few words of help (zsh and fish show them)."""

    __slots__ = ("help", "word")  # plain classes: main.py loads this module for its parser

    def __init__(self, word: str, help: str = "") -> None:
        self.word = word
        self.help = help

    def __repr__(self) -> str:
        return f"Candidate({self.word!r}, {self.help!r})"


class Completion:
    """What to offer for the word under the cursor: ``candidates``, or paths (``files``)."""

    __slots__ = ("candidates", "files")

    def __init__(self, candidates: list[Candidate], files: bool = False) -> None:
        self.candidates = candidates
        self.files = files


if TYPE_CHECKING:
    #: Service names (``NAME`` and ``NAME:INSTANCE``, with their state) for a socket, or none.
    NameSource = Callable[[str | None], list[Candidate]]


def completion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", nargs="?", choices=SHELLS, help="the shell to complete for")
    p.add_argument("--line", help=argparse.SUPPRESS)  # what the scripts call on each TAB


def cmd_completion(args: argparse.Namespace) -> int:
    """The script for a shell; with ``--line``, the candidates for that line."""
    if args.line is not None:
        done = candidates(args.build_parser(), args.line, live_names)
        words = (f"{c.word}\t{c.help}" for c in done.candidates)
        lines = ["files"] if done.files else ["words", *words]
        sys.stdout.write("".join(line.rstrip("\t") + "\n" for line in lines))
        return EXIT_OK
    if args.shell is None:
        raise UsageError("say which shell: corral completion bash|zsh|fish")
    sys.stdout.write(SCRIPTS[args.shell])
    return EXIT_OK


def split_line(line: str) -> tuple[list[str], str]:
    """A command line up to the cursor → (the words before the current one, the current
    one), as a POSIX shell splits it; an open quote holds the current word."""
    import shlex

    mark = "\x01"  # a character nobody types: where the cursor is
    for closing in ("", '"', "'"):
        try:
            words = shlex.split(line + mark + closing, comments=False, posix=True)
        except ValueError:
            continue
        return words[:-1], words[-1].removesuffix(mark)
    return line.split(), ""


def candidates(parser: argparse.ArgumentParser, line: str, names: NameSource) -> Completion:
    """What completes the last word of ``line`` (its first word is the program)."""
    before, current = split_line(line)
    walk = _Walk(parser)
    for word in before[1:]:
        if not walk.take(word):
            return Completion([])
    return walk.complete(current, names)


class _Walk:
    """Where the words so far have led in the parser: which parser (after a command word),
    which positionals remain, and whether an option waits for its value."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.verb = ""
        self.positionals = _positionals(parser)
        self.pending: argparse.Action | None = None
        self.socket: str | None = None
        self.rest = False  # after ``--`` or a REMAINDER: the command's own words

    def take(self, word: str) -> bool:
        """Follow one complete word; False when what follows cannot be known."""
        if self.pending is not None:
            if self.pending.dest == "socket":
                self.socket = word
            self.pending = None
        elif self.rest:
            pass
        elif word == "--":
            self.rest = True
        elif word.startswith("-") and len(word) > 1:
            flag, joined, value = word.partition("=")
            action = _options(self.parser).get(flag)
            if action is not None and action.nargs != 0:
                if joined and action.dest == "socket":
                    self.socket = value
                elif not joined:
                    self.pending = action
        else:
            return self._positional(word)
        return True

    def _positional(self, word: str) -> bool:
        if not self.positionals:
            return True
        action = self.positionals[0]
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(word)
            if sub is None:
                return False
            self.verb = self.verb or word
            self.parser = sub
            self.positionals = _positionals(sub)
            return True
        if action.nargs == argparse.REMAINDER:
            self.rest = True
        elif action.nargs not in ("*", "+"):
            self.positionals.pop(0)
        return True

    def complete(self, current: str, names: NameSource) -> Completion:
        if self.pending is not None:
            return _values(self.pending, current, "")
        if self.rest:
            return Completion([])
        if current.startswith("-"):
            flag, joined, value = current.partition("=")
            action = _options(self.parser).get(flag)
            if joined and action is not None and action.nargs != 0:
                return _values(action, value, flag + "=")
            return _matching(_flags(self.parser), current)
        if not self.positionals:
            return Completion([])
        action = self.positionals[0]
        if isinstance(action, argparse._SubParsersAction):
            verbs = [Candidate(a.dest, a.help or "") for a in action._choices_actions]
            return _matching(verbs, current)
        if action.choices is not None or action.metavar in PATH_METAVARS:
            return _values(action, current, "")
        if action.metavar != NAME_METAVAR:
            return Completion([])
        found = names(self.socket)
        if self.verb in ALL_VERBS:
            found.append(Candidate("all", "every service"))
        return _matching(found, current)


def _values(action: argparse.Action, current: str, prefix: str) -> Completion:
    """An option's or positional's value: its choices, a path, or nothing to offer."""
    if action.choices is not None:
        return _matching([Candidate(prefix + str(c)) for c in action.choices], prefix + current)
    return Completion([], files=action.metavar in PATH_METAVARS)


def _matching(found: list[Candidate], current: str) -> Completion:
    return Completion([c for c in found if c.word.startswith(current)])


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings]


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: a for a in parser._actions for flag in a.option_strings}


def _flags(parser: argparse.ArgumentParser) -> list[Candidate]:
    return [
        Candidate(flag, action.help or "")
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
        if flag.startswith("--") or not any(f.startswith("--") for f in action.option_strings)
    ]


def live_names(socket: str | None) -> list[Candidate]:
    """Every service and instance the daemon has, with its state; none when none answers."""
    from corral.control.client import Connection
    from corral.control.paths import client_socket
    from corral.errors import CorralError

    try:
        with Connection(client_socket(socket), connect_timeout=NAMES_TIMEOUT) as connection:
            connection.sock.settimeout(NAMES_TIMEOUT)
            rows = connection.request("status")
    except (CorralError, ValueError):  # no daemon, a slow one, or a reply cut short
        return []
    found: dict[str, str] = {}
    for row in rows:
        found.setdefault(row["name"], "service")
        if row["instance"]:
            found[f"{row['name']}:{row['instance']}"] = row["state"]
        else:
            found[row["name"]] = row["state"]
    return [Candidate(word, state) for word, state in sorted(found.items())]


# -- the scripts -----------------------------------------------------------------------------

BASH = r"""# corral completion for bash; in ~/.bashrc: eval "$(corral completion bash)"
_corral_complete() {
    local line="${COMP_LINE:0:COMP_POINT}" word
    local -a found
    mapfile -t found < <("${COMP_WORDS[0]}" completion --line "$line" 2>/dev/null)
    COMPREPLY=()
    if [[ ${found[0]} == files ]]; then
        compopt -o default 2>/dev/null  # nothing here: readline completes a path
        return 0
    fi
    for word in "${found[@]:1}"; do
        COMPREPLY+=("${word%%$'\t'*}")
    done
    # bash splits NAME:INSTANCE at the colon (COMP_WORDBREAKS): it replaces what follows it
    local current="${line##*[[:space:]]}"
    if [[ $current == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local colon="${current%"${current##*:}"}"
        COMPREPLY=("${COMPREPLY[@]#"$colon"}")
    fi
}
complete -F _corral_complete corral
"""

ZSH = r"""#compdef corral
# corral completion for zsh; in ~/.zshrc after compinit: eval "$(corral completion zsh)",
# or save it as _corral in a directory of $fpath
_corral() {
    local -a found matches shown
    local item line="${(j: :)words[1,CURRENT-1]} $PREFIX"
    found=("${(@f)$(${words[1]} completion --line "$line" 2>/dev/null)}")
    if [[ ${found[1]} == files ]]; then
        _files
        return
    fi
    for item in "${(@)found[2,-1]}"; do
        [[ -n $item ]] || continue
        matches+=("${item%%$'\t'*}")
        if [[ $item == *$'\t'* ]]; then
            shown+=("${item%%$'\t'*}  -- ${item#*$'\t'}")
        else
            shown+=("$item")
        fi
    done
    (( ${#matches} )) && compadd -l -d shown -a matches
}
if [[ $funcstack[1] == _corral ]]; then
    _corral "$@"
else
    compdef _corral corral
fi
"""

FISH = r"""# corral completion for fish:
#   corral completion fish > ~/.config/fish/completions/corral.fish
function __corral_complete
    set -l program (commandline -opc)[1]
    set -l found ($program completion --line (commandline -cp) 2>/dev/null)
    if test "$found[1]" = files
        __fish_complete_path (commandline -ct)
        return
    end
    printf '%s\n' $found[2..-1]
end
complete -c corral -f -a '(__corral_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}
