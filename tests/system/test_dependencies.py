"""requires / wants / after / provides with real processes: parallel start, each requirement
started once, dependents stopped first, failures passed on, cycles refused, the graph."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.system.conftest import CORRAL, Corral, wait_until


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_twenty_services_each_ready_after_one_second_start_together(corral: Corral) -> None:
    services = "".join(
        f"""
        [service.s{i}]
        script = "sleep 1; echo ready >&3; exec sleep 600"
        ready_fd = 3
        autostart = false
        """
        for i in range(20)
    )
    needs = ", ".join(f'"s{i}"' for i in range(20))
    corral.write(
        services
        + f"""
        [service.app]
        exec = ["sleep", "600"]
        requires = [{needs}]
        autostart = false
        """
    )
    corral.up()
    began = time.monotonic()
    corral.ok("start", "app")
    took = time.monotonic() - began
    rows = corral.status()
    assert all(r["state"] == "running" and r["ready"] for r in rows), rows
    print(f"20 services ready after 1 s each, started through one dependent: {took:.2f} s")
    assert took < 4.0, f"took {took:.1f}s: the requirements did not start in parallel"


def test_a_shared_requirement_is_started_once_however_many_ask(corral: Corral) -> None:
    starts = corral.root / "starts"
    corral.write(
        f"""
        [service.db]
        script = "echo start >> {starts}; sleep 0.5; echo >&3; exec sleep 600"
        ready_fd = 3
        autostart = false
        """
        + "".join(
            f"""
        [service.app{i}]
        exec = ["sleep", "600"]
        requires = ["db"]
        autostart = false
        """
            for i in range(5)
        )
    )
    corral.up()
    corral.ok("start", "app0", "app1", "app2")
    # Three more clients at once, while nothing new is needed, and two at once that need db.
    clients = [
        subprocess.Popen([*CORRAL, "start", f"app{i}"], cwd=corral.root, env=corral.env())
        for i in (3, 4, 3, 4)
    ]
    assert [c.wait(timeout=30) for c in clients] == [0, 0, 0, 0]
    assert lines(starts) == ["start"]
    assert {r["name"]: r["state"] for r in corral.status()} == {
        "db": "running",
        **{f"app{i}": "running" for i in range(5)},
    }


def test_a_dependent_finds_its_requirement_ready_and_stops_first(corral: Corral) -> None:
    order = corral.root / "order"
    marker = corral.root / "db.ready"
    corral.write(
        f"""
        [service.db]
        script = "trap 'echo db-term >> {order}; exit 0' TERM; sleep 0.5; touch {marker}; echo >&3; while :; do sleep 0.1; done"
        ready_fd = 3
        stop_timeout = 1
        autostart = false

        [service.web]
        script = "test -f {marker}; trap 'sleep 1.5; echo web-exit >> {order}; exit 0' TERM; while :; do sleep 0.1; done"
        requires = ["db"]
        stop_timeout = 5
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "web")  # web's script fails at once if db was not ready before it
    assert corral.one("db")["state"] == "running" and corral.one("web")["state"] == "running"
    corral.ok("stop", "db")
    # web took 1.5 s to stop; db's stop (and its 1 s stop timer) began only after that.
    assert lines(order) == ["web-exit", "db-term"]
    assert corral.one("web")["state"] == "waiting" and corral.one("db")["state"] == "waiting"


def test_down_stops_in_reverse_dependency_order(corral: Corral) -> None:
    order = corral.root / "order"
    body = (
        "trap 'sleep 0.3; echo {name} >> "
        + str(order)
        + "; exit 0' TERM; while :; do sleep 0.1; done"
    )
    corral.write(
        f"""
        [service.a]
        script = "{body.format(name="a")}"
        [service.b]
        script = "{body.format(name="b")}"
        requires = ["a"]
        [service.c]
        script = "{body.format(name="c")}"
        after = ["b"]
        wants = ["a"]
        """
    )
    corral.up()
    for name in "abc":
        corral.wait_state(name, "running")
    corral.ok("down")
    assert corral.process is not None and corral.process.wait(timeout=20) == 0
    assert lines(order) == ["c", "b", "a"]


def test_a_failed_requirement_fails_the_dependent_a_failed_want_does_not(corral: Corral) -> None:
    corral.write(
        """
        [service.db]
        script = "exit 3"
        type = "oneshot"
        autostart = false

        [service.cache]
        exec = ["false"]
        ready_fd = 3
        autostart = false

        [service.web]
        exec = ["sleep", "600"]
        requires = ["db"]
        autostart = false

        [service.worker]
        exec = ["sleep", "600"]
        wants = ["cache"]
        autostart = false
        """
    )
    corral.up()
    result = corral.run("start", "web")
    assert result.returncode == 1
    assert "requirement db failed" in result.stderr and "status 3" in result.stderr
    web = corral.one("web")
    assert (web["state"], web["goal"], web["pid"]) == ("failed", "stop", None)
    corral.ok("start", "worker")
    assert corral.one("worker")["state"] == "running" and corral.one("cache")["state"] == "failed"


def test_a_requirement_that_restarts_restarts_its_dependents(corral: Corral) -> None:
    corral.write(
        """
        [service.db]
        exec = ["sleep", "600"]
        restart = "always"
        restart_delay = 0
        autostart = false

        [service.web]
        exec = ["sleep", "600"]
        requires = ["db"]
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "web")
    web_pid = corral.one("web")["pid"]
    corral.ok("restart", "db")
    wait_until(
        lambda: corral.one("web")["state"] == "running" and corral.one("web")["pid"] != web_pid,
        10,
        "web to come back with db",
    )
    import os
    import signal

    db_pid = corral.one("db")["pid"]
    web_pid = corral.one("web")["pid"]
    os.kill(db_pid, signal.SIGKILL)  # a crash and a respawn of the requirement
    wait_until(
        lambda: (w := corral.one("web"))["state"] == "running" and w["pid"] != web_pid,
        10,
        "web to come back after db's respawn",
    )
    assert corral.one("db")["restarts"] == 1


def test_aliases_work_in_every_name_position(corral: Corral) -> None:
    corral.write(
        """
        [service.postgres]
        exec = ["sleep", "600"]
        provides = ["database"]
        autostart = false

        [service.web]
        exec = ["sleep", "600"]
        requires = ["database"]
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "database")
    rows = json.loads(corral.ok("status", "database", "--json"))
    assert [r["name"] for r in rows] == ["postgres"] and rows[0]["state"] == "running"
    corral.ok("stop", "database")
    corral.ok("start", "web")
    assert corral.one("postgres")["state"] == "running"


def test_cycles_are_config_errors_naming_the_cycle(corral: Corral) -> None:
    path = corral.write(
        """
        [service.a]
        exec = "sleep 1"
        requires = ["b"]

        [service.b]
        exec = "sleep 1"
        after = ["a"]
        """
    )
    result = corral.run("config", "check", "-c", str(path))
    assert result.returncode == 1
    assert "dependency cycle" in result.stderr
    assert "a -> b -> a" in result.stderr or "b -> a -> b" in result.stderr
    assert f"{path}:" in result.stderr
    up = subprocess.run(
        [*CORRAL, "up"], cwd=corral.root, capture_output=True, text=True, timeout=30
    )
    assert up.returncode == 1 and "dependency cycle" in up.stderr


def test_graph_prints_dot_and_json(corral: Corral) -> None:
    corral.write(
        """
        [service.db]
        exec = "sleep 600"
        provides = ["database"]
        autostart = false
        [service.web]
        exec = "sleep 600"
        requires = ["database"]
        wants = ["cache"]
        autostart = false
        [service.cache]
        exec = "sleep 600"
        autostart = false
        """
    )
    corral.up()
    dot = corral.ok("graph", "--format", "dot")
    assert dot.startswith("digraph corral {") and '"web" -> "db"' in dot
    graph = json.loads(corral.ok("graph", "--format", "json"))
    assert graph["services"]["web"] == {"requires": ["db"], "wants": ["cache"]}
    assert graph["aliases"] == {"database": "db"}
    assert graph["levels"] == [["db", "cache"], ["web"]]
