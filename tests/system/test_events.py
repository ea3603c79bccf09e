"""Upstart's activation with a real daemon: events and ``start_on``/``stop_on``, states and
``while``, instances. Each scenario drives real processes through the real CLI."""

from __future__ import annotations

import json
import select
import subprocess
from typing import Any

from tests.system.conftest import CORRAL, Corral, env_of, pid_alive, wait_until


def rows_of(corral: Corral, name: str) -> dict[str, dict[str, Any]]:
    """The status rows of one service, by instance key."""
    return {r["instance"]: r for r in corral.status(name)}


GETTY = """
[service.tty]
start_on = "tty-added TTY=*"
stop_on = "tty-removed TTY=$TTY"
instance = "${TTY}"

[service.getty]
exec = ["sleep", "600"]
instance = "${TTY}"
while = "tty(TTY=*)"
"""


def test_the_getty_example_one_getty_per_tty(corral: Corral) -> None:
    corral.write(GETTY)
    corral.up()
    # Before any tty: each service shows one row at rest.
    assert rows_of(corral, "getty")[""]["state"] == "waiting"
    corral.ok("emit", "tty-added", "TTY=tty1")
    corral.ok("emit", "tty-added", "TTY=tty2")
    ttys = rows_of(corral, "tty")
    assert set(ttys) == {"tty1", "tty2"}
    assert all(r["state"] == "running" and r["pid"] is None for r in ttys.values()), ttys
    gettys = wait_until(
        lambda: (
            (rows := rows_of(corral, "getty")).keys() == {"tty1", "tty2"}
            and all(r["state"] == "running" for r in rows.values())
            and rows
        ),
        what="a getty per tty",
    )
    pids = {key: row["pid"] for key, row in gettys.items()}
    assert env_of(pids["tty1"])["TTY"] == "tty1" and env_of(pids["tty2"])["TTY"] == "tty2"

    corral.ok("emit", "tty-removed", "TTY=tty1")
    wait_until(lambda: set(rows_of(corral, "getty")) == {"tty2"}, what="getty:tty1 to go")
    wait_until(lambda: not pid_alive(pids["tty1"]), what="getty:tty1's process to end")
    assert set(rows_of(corral, "tty")) == {"tty2"}
    assert rows_of(corral, "getty")["tty2"]["pid"] == pids["tty2"], "tty2 was touched"

    # Addressing: NAME:KEY and NAME KEY=VALUE, for status, stop and logs.
    one = json.loads(corral.ok("status", "getty", "TTY=tty2", "--json"))
    assert [r["instance"] for r in one] == ["tty2"]
    assert [r["instance"] for r in json.loads(corral.ok("status", "getty:tty2", "--json"))] == [
        "tty2"
    ]
    assert "running" in corral.ok("logs", "getty", "TTY=tty2")
    corral.ok("stop", "getty:tty2")
    assert rows_of(corral, "getty")[""]["state"] == "waiting"


def test_while_apache_and_mysql_survives_a_slow_restart(corral: Corral) -> None:
    """The restart problem: an event pair misses the second start, ``while`` does not."""
    corral.write(
        """
        [service.apache]
        exec = ["sleep", "600"]
        pre_start = "sleep ${DELAY:-0}"

        [service.mysql]
        exec = ["sleep", "600"]

        [service.app]
        exec = ["sleep", "600"]
        while = "apache and mysql"

        [service.pair]
        exec = ["sleep", "600"]
        start_on = "started apache and started mysql"
        stop_on = "stopping apache or stopping mysql"
        """
    )
    corral.up()
    corral.wait_state("app", "running")
    corral.wait_state("pair", "running")
    first = corral.one("app")["pid"]

    corral.ok("stop", "apache")
    corral.wait_state("app", "waiting")
    corral.wait_state("pair", "waiting")
    corral.ok("start", "apache", "DELAY=1")  # a slow start: 1 s in pre-start
    app = corral.wait_state("app", "running", timeout=10)
    assert app["pid"] != first, "app runs again, as a new process"
    # The event pair saw only "started apache" this time: it stays down.
    assert corral.one("pair")["state"] == "waiting"

    corral.ok("restart", "mysql")
    wait_until(
        lambda: corral.one("app")["state"] == "running" and corral.one("app")["pid"] != app["pid"],
        what="app to follow mysql's restart",
    )


def test_starting_holds_the_job_until_what_it_started_has_settled(corral: Corral) -> None:
    marker = corral.root / "prepared"
    result = corral.root / "result"
    down = corral.root / "side-down"
    corral.write(
        f"""
        [service.prepare]
        type = "oneshot"
        script = "sleep 0.5; touch {marker}"
        start_on = "starting db"

        [service.db]
        script = "trap 'test -f {down} && echo ok > {result}; exit 0' TERM; while :; do sleep 0.05; done"
        pre_start = "test -f {marker}"
        autostart = false

        [service.side]
        exec = ["sleep", "600"]
        start_on = "started db"
        stop_on = "stopping db"
        post_stop = "sleep 0.3; touch {down}"
        """
    )
    corral.up()
    corral.ok("start", "db")  # fails if prepare had not finished before db's pre-start
    assert corral.one("db")["state"] == "running"
    corral.wait_state("side", "running")
    corral.ok("stop", "db")
    assert result.read_text().strip() == "ok", "db went down before side had stopped"
    assert corral.one("side")["state"] == "waiting"


def test_an_event_passes_its_environment_and_emit_waits_for_it(corral: Corral) -> None:
    out = corral.root / "version"
    corral.write(
        f"""
        [service.deploy]
        type = "oneshot"
        script = "sleep 0.5; echo $VERSION > {out}"
        start_on = "deploy VERSION=* TARGET!=prod"
        """
    )
    corral.up()
    corral.ok("emit", "deploy", "VERSION=1.2", "TARGET=prod")  # refused by TARGET!=prod
    assert not out.exists() and corral.one("deploy")["state"] == "waiting"
    corral.ok("emit", "deploy", "VERSION=1.2")  # no TARGET: != holds on a missing key
    assert out.read_text().strip() == "1.2", "emit returned before the job settled"


def test_a_compound_start_on_is_atomic_and_resets_after_firing(corral: Corral) -> None:
    count = corral.root / "count"
    corral.write(
        f"""
        [service.both]
        start_on = "a and b"
        stop_on = "reset"
        post_start = "echo fired >> {count}"
        """
    )
    corral.up()

    def fired() -> int:
        return len(count.read_text().split()) if count.exists() else 0

    corral.ok("emit", "a")
    assert fired() == 0
    corral.ok("emit", "b")
    assert fired() == 1 and corral.one("both")["state"] == "running"
    corral.ok("emit", "reset")
    corral.ok("emit", "a")  # b was used by the first firing: a alone is not enough
    assert fired() == 1 and corral.one("both")["state"] == "waiting"
    corral.ok("emit", "b")
    assert fired() == 2


def test_instances_by_command_and_their_keys(corral: Corral) -> None:
    corral.write(
        """
        [service.worker]
        exec = ["sleep", "600"]
        instance = "${N}"
        """
    )
    corral.up()
    corral.ok("start", "worker", "N=1")
    corral.ok("start", "worker:2")  # the key gives N=2
    rows = rows_of(corral, "worker")
    assert set(rows) == {"1", "2"} and env_of(rows["2"]["pid"])["N"] == "2"
    corral.ok("start", "worker", "N=1")  # starting an existing one is a no-op
    assert rows_of(corral, "worker")["1"]["pid"] == rows["1"]["pid"]

    for words, message in (
        (["N="], "cannot be empty"),
        (["N=a\tb"], "control character"),
        ([], "say which, as worker VAR=VALUE or worker:KEY"),
    ):
        result = corral.run("start", "worker", *words)
        assert result.returncode == 2 and message in result.stderr, (words, result.stderr)
    assert set(rows_of(corral, "worker")) == {"1", "2"}, "a refused start changed nothing"

    corral.ok("restart", "worker")  # every instance
    assert all(r["pid"] not in (rows["1"]["pid"], rows["2"]["pid"]) for r in corral.status())
    corral.ok("stop", "worker")
    assert list(rows_of(corral, "worker")) == [""]


def test_a_state_switched_by_commands_drives_a_while_job(corral: Corral) -> None:
    corral.write(
        """
        [service.maintenance]
        autostart = false

        [service.banner]
        exec = ["sleep", "600"]
        while = "maintenance"
        """
    )
    corral.up()
    assert corral.one("banner")["state"] == "waiting"
    corral.ok("start", "maintenance")
    state = corral.one("maintenance")
    assert state["state"] == "running" and state["pid"] is None
    corral.wait_state("banner", "running")
    corral.ok("stop", "maintenance")
    corral.wait_state("banner", "waiting")
    corral.ok("start", "maintenance")
    corral.wait_state("banner", "running")


def test_a_start_on_starting_of_its_own_requirement_does_not_deadlock(corral: Corral) -> None:
    corral.write(
        """
        [service.db]
        exec = ["sleep", "600"]
        autostart = false

        [service.watcher]
        exec = ["sleep", "600"]
        start_on = "starting db"
        requires = ["db"]
        """
    )
    corral.up()
    corral.ok("start", "db", timeout=10)
    corral.wait_state("watcher", "running")


def test_emit_fails_when_a_job_it_started_fails(corral: Corral) -> None:
    corral.write(
        """
        [service.broken]
        type = "oneshot"
        exec = ["false"]
        start_on = "go"
        """
    )
    corral.up()
    result = corral.run("emit", "go")
    assert result.returncode == 1 and "broken" in result.stderr, result.stderr
    assert corral.run("emit", "bad name!").returncode == 2
    assert corral.run("emit", "go", "--no-wait").returncode == 0


def test_events_shows_the_stream(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    records = [json.loads(line) for line in corral.ok("events", "--json").splitlines()]
    names = [r["name"] for r in records]
    assert names[:1] == ["startup"] and "started" in names
    started = records[names.index("started")]
    assert started["env"] == {"JOB": "web", "INSTANCE": ""}
    corral.ok("stop", "web")
    stopped = [r for r in map(json.loads, corral.ok("events", "--json").splitlines())][-1]
    assert stopped["name"] == "stopped" and stopped["env"]["RESULT"] == "ok"

    follower = subprocess.Popen(
        [*CORRAL, "events", "-f", "-n", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=corral.env(),
        cwd=corral.root,
    )
    try:
        assert follower.stdout is not None
        # The follower attaches in its own time: knock until it hears, then speak.
        wait_until(lambda: _knock(corral, follower.stdout), what="the follower to hear")
        corral.ok("emit", "hello", "WHO=world")
        heard = wait_until(lambda: _heard(follower.stdout, "hello"), what="hello")
        assert heard.split()[1:] == ["hello", "WHO=world"], heard
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def _knock(corral: Corral, stream: Any) -> bool:
    corral.ok("emit", "knock", "--no-wait")
    return bool(_heard(stream, "knock"))


def _heard(stream: Any, word: str) -> str | None:
    """The next line with ``word`` the stream has now (lines arrive whole); None if none."""
    while select.select([stream], [], [], 0.2)[0]:
        line = stream.readline()
        if not line or word in line:
            return line or None
    return None


def test_expression_errors_point_at_the_column(corral: Corral) -> None:
    corral.write(
        """
        [service.x]
        exec = ["true"]
        start_on = "started db and (stopped"
        """
    )
    result = corral.run("config", "check")
    assert result.returncode == 1
    assert 'service.x.start_on: cannot read the condition "started db and (stopped"' in (
        result.stderr
    )
    assert "at column 24: missing ')'" in result.stderr


def test_while_on_one_instance_and_any_of(corral: Corral) -> None:
    corral.write(
        GETTY
        + """
        [service.console]
        exec = ["sleep", "600"]
        while = "getty(TTY=tty1) or tty(TTY=tty9)"

        [service.pairs]
        exec = ["sleep", "600"]
        instance = "${TTY}"
        while = "tty(TTY=*) and getty(TTY=*)"
        """.replace("        ", "")
    )
    corral.up()
    corral.ok("start", "tty", "TTY=tty2")  # a state instance made by a command
    wait_until(lambda: "tty2" in rows_of(corral, "pairs"), what="pairs:tty2")
    assert corral.one("console")["state"] == "waiting", "tty2 is not tty1"
    corral.ok("emit", "tty-added", "TTY=tty9")
    corral.wait_state("console", "running")  # any of: the tty9 branch holds
    corral.ok("emit", "tty-removed", "TTY=tty9")
    corral.wait_state("console", "waiting")
    corral.ok("emit", "tty-added", "TTY=tty1")
    corral.wait_state("console", "running")  # any of: the getty:tty1 branch holds
    wait_until(
        lambda: set(rows_of(corral, "pairs")) == {"tty1", "tty2"}, what="pairs per tty with getty"
    )
    corral.ok("stop", "getty:tty1")  # all of: tty1 still holds, its getty no longer
    wait_until(lambda: set(rows_of(corral, "pairs")) == {"tty2"}, what="pairs:tty1 to stop")
    corral.wait_state("console", "waiting")
