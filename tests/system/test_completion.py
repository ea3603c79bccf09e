"""``corral completion bash|zsh|fish``: the scripts loaded into the real shells, completing verbs,
flags and the live service names of a real daemon; and the candidates themselves."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.cli.completion import Candidate, candidates, split_line
from tests.conftest import missing
from tests.system.conftest import CORRAL, Corral
from tests.system.terminal import Terminal

CONFIG = """
[service.web]
exec = ["sleep", "600"]

[service.db]
exec = ["sleep", "600"]
autostart = false

[service.getty]
exec = ["sleep", "600"]
instance = "${TTY}"
start_on = "tty-added TTY=*"
"""


@pytest.fixture
def path_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a ``corral`` running this checkout's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "corral"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m corral "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_SOCKET"}
    return {**env, "PATH": f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"}


@pytest.fixture
def daemon(corral: Corral) -> Corral:
    corral.write(CONFIG)
    corral.up()
    corral.ok("emit", "tty-added", "TTY=tty1")
    return corral


def script(shell: str) -> str:
    run = subprocess.run([*CORRAL, "completion", shell], capture_output=True, text=True,
                         timeout=30, check=True)  # fmt: skip
    return run.stdout


def bash_completes(line: str, env: dict[str, str], cwd: Path) -> list[str]:
    """COMPREPLY after bash's completion function ran for ``line`` (the cursor at its end),
    with COMP_* set as bash sets them (words split at its COMP_WORDBREAKS, colon included)."""
    program = f"""
        eval "$(corral completion bash)"
        COMP_LINE={_quoted(line)}; COMP_POINT=${{#COMP_LINE}}
        read -r -a COMP_WORDS <<< "${{COMP_LINE//:/ : }}"
        [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        _corral_complete
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    run = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env,
                         cwd=cwd, timeout=60, check=True)  # fmt: skip
    return run.stdout.split()


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_the_bash_script_registers_its_function(path_env: dict[str, str], tmp_path: Path) -> None:
    run = subprocess.run(["bash", "-c", 'eval "$(corral completion bash)"; complete -p corral'],
                         capture_output=True, text=True, env=path_env, timeout=30)  # fmt: skip
    assert run.stdout.strip() == "complete -F _corral_complete corral", run.stderr


def test_bash_completes_verbs_and_flags_without_a_daemon(
    path_env: dict[str, str], tmp_path: Path
) -> None:
    assert bash_completes("corral sta", path_env, tmp_path) == ["start", "status"]
    assert bash_completes("corral status --j", path_env, tmp_path) == ["--json"]
    assert bash_completes("corral graph --format ", path_env, tmp_path) == ["dot", "json"]
    assert bash_completes("corral completion ", path_env, tmp_path) == ["bash", "zsh", "fish"]
    assert bash_completes("corral start ", path_env, tmp_path) == ["all"]  # no daemon: no names


def test_bash_completes_the_live_service_names(daemon: Corral, path_env: dict[str, str]) -> None:
    env = {**path_env, "CORRAL_SOCKET": daemon.socket}
    assert bash_completes("corral stop ", env, daemon.root) == [
        "db", "getty", "getty:tty1", "web", "all"
    ]  # fmt: skip
    assert bash_completes("corral status w", env, daemon.root) == ["web"]
    # bash replaces only what follows the colon: the candidate is cut to that
    assert bash_completes("corral logs getty:t", env, daemon.root) == ["tty1"]
    # --socket on the line wins over no CORRAL_SOCKET at all
    line = f"corral --socket {daemon.socket} restart d"
    assert bash_completes(line, path_env, Path("/")) == ["db"]


def test_tab_in_an_interactive_bash_completes_a_verb_and_an_instance(
    daemon: Corral, path_env: dict[str, str]
) -> None:
    env = {**path_env, "CORRAL_SOCKET": daemon.socket, "PS1": "$ ", "TERM": "xterm",
           "HISTFILE": "/dev/null"}  # fmt: skip
    bash = Terminal(["bash", "--norc", "--noprofile", "-i"], env, str(daemon.root))
    try:
        bash.type('eval "$(corral completion bash)"; echo loaded\n')
        bash.expect("loaded\n")
        bash.type("corral stat\t")
        bash.expect("corral status ")
        bash.type("getty:t\t")
        bash.expect("getty:tty1 ")
        bash.type("--js\t")
        bash.expect("--json ")
        bash.type("\n")
        bash.expect('"instance":"tty1"')
    finally:
        bash.close()


def test_zsh_loads_its_script_and_tab_completes(daemon: Corral, path_env: dict[str, str]) -> None:
    if shutil.which("zsh") is None:
        missing("zsh (Debian package zsh)")
    text = script("zsh")
    assert subprocess.run(["zsh", "-n"], input=text, text=True, timeout=30).returncode == 0
    env = {**path_env, "CORRAL_SOCKET": daemon.socket, "TERM": "xterm", "PS1": "$ "}
    zsh = Terminal(["zsh", "-f", "-i"], env, str(daemon.root))
    try:
        zsh.type("PS1='$ '; autoload -U compinit; compinit -u -D\n")
        zsh.type('eval "$(corral completion zsh)"; echo load""ed\n')
        zsh.expect("loaded\n")
        zsh.type("corral resta\t")
        zsh.expect("corral restart ")
        zsh.type("getty:\t")
        zsh.expect("getty:tty1")
    finally:
        zsh.close()


def test_fish_loads_its_script_and_completes(daemon: Corral, path_env: dict[str, str]) -> None:
    if shutil.which("fish") is None:
        missing("fish (Debian package fish)")
    text = script("fish")
    assert subprocess.run(["fish", "--no-execute"], input=text, text=True,
                          timeout=30).returncode == 0  # fmt: skip
    env = {**path_env, "CORRAL_SOCKET": daemon.socket, "HOME": str(daemon.root)}
    program = "corral completion fish | source; complete -C'corral sta'; complete -C'corral stop g'"
    run = subprocess.run(["fish", "--no-config", "-c", program], capture_output=True, text=True,
                         env=env, cwd=daemon.root, timeout=60, check=True)  # fmt: skip
    lines = run.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["start", "status", "getty", "getty:tty1"]
    assert "start\tstart services; wait until they are ready" in lines


def test_no_shell_named_is_a_usage_error() -> None:
    run = subprocess.run([*CORRAL, "completion"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "bash|zsh|fish" in run.stderr


# -- the candidates, on a parser of corral's shape ---------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corral")
    parser.add_argument("--socket", metavar="PATH")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    start = sub.add_parser("start", help="start services")
    start.add_argument("names", nargs="+", metavar="NAME")
    start.add_argument("--no-wait", action="store_true", help="return at once")
    start.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS)
    up = sub.add_parser("up", help="run the daemon")
    up.add_argument("-c", "--config", action="append", metavar="PATH")
    up.add_argument("-d", "--detach", action="store_true")
    action = sub.add_parser("action", help="run an action")
    action.add_argument("name", metavar="NAME")
    action.add_argument("action", metavar="ACTION")
    action.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _names(socket: str | None) -> list[Candidate]:
    return [Candidate("web", "running"), Candidate(f"from:{socket}")]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("corral ", ["start", "up", "action"]),
        ("corral s", ["start"]),
        ("corral start ", ["web", "from:None", "all"]),
        ("corral start web w", ["web"]),  # NAME... goes on
        ("corral --socket /s start f", ["from:/s"]),
        ("corral start --socket=/t f", ["from:/t"]),
        ("corral start -", ["--help", "--no-wait", "--socket"]),
        ("corral up --", ["--help", "--config", "--detach"]),
        ("corral action ", ["web", "from:None"]),
        ("corral action web ", []),  # ACTION: nothing known to offer
        ("corral action web rotate --x", []),  # the action's own arguments
        ("corral nosuch ", []),
        ("corral 'sta", ["start"]),  # an open quote
    ],
)
def test_candidates_follow_the_parser(line: str, words: list[str]) -> None:
    done = candidates(_parser(), line, _names)
    assert [c.word for c in done.candidates] == words and not done.files


@pytest.mark.parametrize("line", ["corral up -c ", "corral up --config=", "corral --socket "])
def test_a_path_is_left_to_the_shell(line: str) -> None:
    assert candidates(_parser(), line, _names).files


@pytest.mark.parametrize(
    ("line", "split"),
    [
        ("corral start ", (["corral", "start"], "")),
        ("corral start we", (["corral", "start"], "we")),
        ('corral emit x "K=a b', (["corral", "emit", "x"], "K=a b")),
        ("corral", ([], "corral")),
    ],
)
def test_a_line_splits_as_the_shell_splits_it(line: str, split: tuple[list[str], str]) -> None:
    assert split_line(line) == split


def test_a_daemon_that_never_answers_costs_a_tab_two_seconds_not_a_hang(
    path_env: dict[str, str], tmp_path: Path
) -> None:
    """Something listens on the socket but never replies (a hung peer): the names are left
    out after the timeout, and the rest completes."""
    import socket

    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "hung.sock"))
        listener.listen()
        env = {**path_env, "CORRAL_SOCKET": str(tmp_path / "hung.sock")}
        started = time.monotonic()
        assert bash_completes("corral stop ", env, tmp_path) == ["all"]
        assert time.monotonic() - started < 20
