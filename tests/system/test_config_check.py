"""Every error of a configuration in one run, the same list from `config check`, `up` and
`config reload`: one class of error never hides another, nor one file the others."""

from __future__ import annotations

from pathlib import Path

from tests.system.conftest import Corral

BAD = """\
[service.a]
exec = ["sleep", "600"]
requires = ["ghost"]
[service.b]
exec = ["sleep", "600"]
while = "phantom"
[service.c]
exec = ["sleep", "600"]
after = ["d"]
[service.d]
exec = ["sleep", "600"]
wants = ["c"]
[service.e]
exec = ["sleep", "600"]
stop_timeout = "soon"
colour = "blue"
[service.t]
start_on = "tty-added"
instance = "${T}"
[service.u]
exec = ["sleep", "600"]
requires = ["t", "half"]
"""
BROKEN = "[service.half]\nexec = ]\n"
MORE = '[service.m]\nexec = ["sleep", "600"]\nwhile = "e and nobody"\nrestart = "sometimes"\n'


def write_bad(corral: Corral) -> list[str]:
    """Write a config with one error of every kind; the lines every command must print."""
    (corral.root / "corral.d").mkdir(exist_ok=True)
    main = corral.write(BAD)
    broken = corral.write(BROKEN, "corral.d/broken.toml")
    more = corral.write(MORE, "corral.d/more.toml")
    # An unknown name may be in the file that could not be read: the message says so. Not
    # "half", which that file's header shows.
    caveat = f" (unless it is defined in {broken}, which could not be loaded)"
    return [
        f'{main}:3: service.a.requires: no service or alias named "ghost"{caveat}',
        f'{main}:6: service.b.while: no service or alias named "phantom"{caveat}',
        f"{main}:9: service.c.after: dependency cycle: c -> d -> c",
        f"{main}:15: service.e.stop_timeout: expected seconds",
        f'{main}:16: service.e.colour: unknown key "colour"',
        f"{main}:22: service.u.requires: t is instantiated",
        f"{broken}:2: invalid TOML",
        f'{more}:3: service.m.while: no service or alias named "nobody"{caveat}',
        f"{more}:4: service.m.restart: expected one of",
    ]


def assert_every_line(output: str, expected: list[str]) -> None:
    """Each expected problem is there, and no other (nothing spurious, such as "half")."""
    for line in expected:
        assert line in output, f"missing {line!r} in:\n{output}"
    problems = [line for line in output.splitlines() if ".toml" in line]
    assert len(problems) == len(expected), output


def test_config_check_reports_every_error_of_every_file(corral: Corral) -> None:
    expected = write_bad(corral)
    result = corral.run("config", "check")
    assert result.returncode == 1
    assert_every_line(result.stderr, expected)


def test_a_missing_source_hides_nothing_either(corral: Corral) -> None:
    expected = write_bad(corral)
    missing = corral.root / "missing.toml"
    broken = corral.root / "corral.d" / "broken.toml"
    result = corral.run("config", "check", "-c", "corral.toml", "-c", "corral.d",
                        "-c", str(missing))  # fmt: skip
    assert result.returncode == 1
    both = f"(unless it is defined in {missing}, {broken}, which"
    assert_every_line(
        result.stderr,
        [line.replace(f"(unless it is defined in {broken}, which", both) for line in expected]
        + [f"{missing}: no such file or directory"],
    )


def test_up_prints_the_same_list_and_starts_nothing(corral: Corral) -> None:
    expected = write_bad(corral)
    process = corral.up(wait=False)
    assert process.wait(timeout=30) == 1
    assert_every_line(corral.log(), expected)


def test_config_reload_prints_the_same_list_and_changes_nothing(corral: Corral) -> None:
    corral.write('[service.a]\nexec = ["sleep", "600"]\n')
    (corral.root / "corral.d").mkdir()  # a source from the start, empty
    corral.up(env={"CORRAL_WATCH": "0"})
    before = corral.wait_state("a", "running")
    expected = write_bad(corral)
    result = corral.run("config", "reload")
    assert result.returncode == 1
    assert_every_line(result.stderr, expected)
    assert corral.one("a") == before
    assert Path(corral.socket).exists()
