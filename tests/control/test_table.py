"""The status table (made by the daemon, importable by the CLI): a kept ``StatusTable`` must print exactly what a table made from
scratch, row by row, prints, whatever the rows and however they change between requests."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.control import table as render
from corral.control.protocol import StatusRow
from corral.control.table import HEADER, StatusTable, age, status_table

NOW = time.time()

rows = st.builds(
    StatusRow,
    name=st.sampled_from(["web", "db", "a-much-longer-name"]),
    instance=st.sampled_from(["", "tty1", "x"]),
    goal=st.sampled_from(["start", "stop"]),
    state=st.sampled_from(["waiting", "starting", "running", "stopping", "killed", "failed"]),
    pid=st.none() | st.integers(1, 4_000_000),
    ready=st.booleans(),
    restarts=st.integers(0, 10_000),
    exit_status=st.none() | st.integers(0, 255),
    exit_signal=st.none() | st.sampled_from(["KILL", "TERM"]),
    since=st.floats(NOW - 200_000, NOW),
    stale=st.booleans(),
    description=st.just(""),
    error=st.none() | st.sampled_from(["boom", "exited with status 3"]),
    status_text=st.none() | st.sampled_from(["Ready to accept connections", "3 jobs"]),
)


def explain(row: StatusRow) -> list[str]:
    """What INFO says, the plain way: stale first, then the error, or the last exit of an
    instance that failed or is on its way back up; then the service's own STATUS= text."""
    said = ["stale definition"] if row.stale else []
    coming_back = row.goal == "start" and row.state in ("stopping", "killed")
    if row.error:
        said.append(row.error)
    elif row.state == "failed" or coming_back:
        if row.exit_signal:
            said.append(f"last exit: signal {row.exit_signal}")
        elif row.exit_status is not None:
            said.append(f"last exit: {row.exit_status}")
    if row.status_text:
        said.append(row.status_text)
    return said


def reference(table: list[StatusRow], colour: bool) -> str:
    """The table the plain way: cells per row, widths, one padded line per row."""
    now = time.time()
    cells = [HEADER[:-1]]
    infos = [HEADER[-1]]
    for row in table:
        info = "; ".join(explain(row))
        name = f"{row.name}:{row.instance}" if row.instance else row.name
        pid = "-" if row.pid is None else str(row.pid)
        ready = "yes" if row.ready else "no"
        since = age(row.since, now)
        cells.append((name, row.goal, row.state, pid, ready, str(row.restarts), since))
        infos.append(info)
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER) - 1)]
    lines = []
    for number, (line, info) in enumerate(zip(cells, infos, strict=True)):
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        if colour and number and line[2] in ("running", "failed", "waiting"):
            code = {"running": "32", "failed": "31", "waiting": "90"}[line[2]]
            padded[2] = f"\x1b[{code}m{padded[2]}\x1b[0m"
        text = "  ".join([*padded, info]).rstrip()
        lines.append(f"\x1b[1m{text}\x1b[0m" if colour and not number else text)
    return "\n".join(lines)


@given(st.lists(st.lists(rows, max_size=12), min_size=1, max_size=4), st.booleans())
def test_a_kept_table_prints_what_a_fresh_one_does(
    requests: list[list[StatusRow]], colour: bool
) -> None:
    kept = StatusTable()
    for table in requests:
        for _ in range(2):  # the second time from what it kept
            assert kept.render(table, colour) == reference(table, colour)
    assert status_table(requests[0], colour) == reference(requests[0], colour)


def test_the_ages_are_redone_for_kept_rows() -> None:
    now = time.time()
    row = StatusRow("web", "", "start", "running", 7, True, 0, None, None, now - 5.5, False, "", None, None)  # fmt: skip
    kept = StatusTable()
    assert kept.render([row], colour=False).splitlines()[1].split()[6] in ("5s", "6s")
    row.since = now - 600.5  # the same row object, as if ten minutes had passed
    assert kept.render([row], colour=False).splitlines()[1].split()[6] in ("10m00s", "10m01s")


def test_a_kept_table_is_given_again_until_an_age_it_shows_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(render, "time", SimpleNamespace(time=lambda: clock[0]))
    rows = [
        StatusRow(
            name, "", "start", "running", 7, True, 0, None, None, since, False, "", None, None
        )
        for name, since in (("web", clock[0] - 59.5), ("db", clock[0] - 7200.0))
    ]
    kept = StatusTable()
    first = kept.render(rows, colour=False)
    clock[0] += 0.4  # the same ages: the same text, not a new one
    assert kept.render(rows, colour=False) is first
    clock[0] += 0.2  # web is a minute old now
    again = kept.render(rows, colour=False)
    assert [line.split()[6] for line in again.splitlines()[1:]] == ["1m00s", "2h00m"]


def _row(**fields: object) -> StatusRow:
    base: dict[str, object] = dict(
        name="web", instance="", goal="start", state="running", pid=7, ready=True, restarts=0,
        exit_status=None, exit_signal=None, since=NOW, stale=False, description="", error=None,
        status_text=None,
    )  # fmt: skip
    base.update(fields)
    return StatusRow(**base)  # type: ignore[arg-type]


def _info_of(row: StatusRow) -> str:
    line = status_table([row], colour=False).splitlines()[1]
    return line.split(None, 7)[7] if len(line.split(None, 7)) > 7 else ""


def test_a_healthy_service_stopped_once_shows_no_old_exit() -> None:
    assert _info_of(_row(exit_signal="TERM")) == ""
    assert _info_of(_row(goal="stop", state="waiting", pid=None, exit_signal="TERM")) == ""


def test_an_old_exit_explains_a_failure_and_a_respawn() -> None:
    assert _info_of(_row(goal="stop", state="failed", pid=None, exit_status=3)) == "last exit: 3"
    assert _info_of(_row(state="stopping", exit_signal="KILL")) == "last exit: signal KILL"


def test_the_status_text_of_a_notify_service_is_shown() -> None:
    assert _info_of(_row(status_text="Ready to accept connections")) == (
        "Ready to accept connections"
    )
    assert _info_of(_row(stale=True, status_text="busy")) == "stale definition; busy"
