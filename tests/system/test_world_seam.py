"""The activation-source seam: a bridge is a child process of corral's that reports states and
events over the control protocol. Its states drive ``while`` jobs; its crash leaves the daemon
and every service untouched; restarted, its first report replaces what it said before.

The toy bridge here is a user's service beside corral's own files bridge (which runs because
``path-exists`` is used, and finds none of the toy's files): a state holds while any source
says it does."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

from tests.system.conftest import Corral, pid_alive, wait_until

#: A toy bridge: holds ``path-exists(FILE=ROOT/toy/NAME, NAME=NAME)`` for each NAME of
#: ``holds.txt`` (no such file exists), reporting the whole list whenever ``holds.txt``
#: changes, and emits ``toy-ready`` once connected.
BRIDGE = textwrap.dedent(
    """
    import os, sys, time
    from corral.bridges.base import Bridge

    holds = os.path.join(sys.argv[1], "holds.txt")

    def state(name):
        return ("path-exists", {"FILE": os.path.join(sys.argv[1], "toy", name), "NAME": name})

    def read():
        try:
            with open(holds) as f:
                return [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            return []

    with Bridge("toy") as bridge:
        seen = read()
        bridge.replace_states([state(name) for name in seen])
        bridge.emit("toy-ready", {"PID": str(os.getpid())})
        print("bridge connected", flush=True)
        while True:
            time.sleep(0.05)
            now = read()
            if now != seen:
                for gone in set(seen) - set(now):
                    bridge.release(*state(gone))
                for new in set(now) - set(seen):
                    bridge.hold(*state(new))
                seen = now
    """
)


def setup(corral: Corral) -> Path:
    (corral.root / "bridge.py").write_text(BRIDGE)
    corral.write(
        f"""
        [service.toybridge]
        exec = ["{sys.executable}", "{corral.root / "bridge.py"}", "{corral.root}"]
        restart = "always"
        restart_delay = "100ms"

        [service.user]
        exec = ["sleep", "600"]
        while = "path-exists(FILE={corral.root}/toy/data)"

        [service.per_file]
        exec = ["sleep", "600"]
        instance = "${{NAME}}"
        while = "path-exists(NAME=*)"
        """
    )
    return corral.root / "holds.txt"


def running(corral: Corral, name: str) -> list[str]:
    return sorted(r["instance"] for r in corral.status(name) if r["state"] == "running")


def test_a_bridges_states_start_and_stop_while_jobs(corral: Corral) -> None:
    holds = setup(corral)
    holds.write_text("data\nother\n")
    corral.up()
    corral.wait_state("user", "running")
    wait_until(lambda: running(corral, "per_file") == ["data", "other"], 10, "one per file")
    assert "toy-ready" in corral.ok("events")
    holds.write_text("other\n")
    corral.wait_state("user", "waiting")
    wait_until(lambda: running(corral, "per_file") == ["other"], 10, "the instance of data to go")


def test_a_crashing_bridge_harms_nothing_and_its_restart_replaces_its_states(
    corral: Corral,
) -> None:
    holds = setup(corral)
    holds.write_text("data\n")
    daemon = corral.up()
    user = corral.wait_state("user", "running")["pid"]
    bridge = corral.wait_state("toybridge", "running")["pid"]
    # Between its death and its restart the world changes: the restarted bridge's first
    # report says so, and what it held before no longer counts.
    os.kill(bridge, signal.SIGSTOP)
    holds.write_text("")
    os.kill(bridge, signal.SIGKILL)
    wait_until(lambda: (r := corral.one("toybridge"))["restarts"] == 1 and r["pid"] != bridge,
               10, "the bridge to be respawned")  # fmt: skip
    corral.wait_state("user", "waiting")
    assert not pid_alive(user)
    assert daemon.poll() is None
    holds.write_text("data\n")
    corral.wait_state("user", "running")


def test_a_bad_state_report_is_refused_and_changes_nothing(corral: Corral) -> None:
    setup(corral).write_text("")
    corral.up()
    for bad in (
        {"source": "x", "states": [{"name": "path-exists", "env": {"1X": "a"}}]},
        {"source": "x", "states": [{"name": "bad name!"}]},
        {"source": "", "states": []},
        {"source": "x", "states": [{"env": {}}]},
        {"source": "x", "states": "no"},
    ):
        reply = corral.request("state", **bad)
        assert not reply["ok"] and reply["error"]["code"] == 2, reply
    assert corral.one("user")["state"] == "waiting"
    assert corral.request("state", source="x", states=[
        {"name": "path-exists", "env": {"FILE": f"{corral.root}/toy/data"}}])["ok"]  # fmt: skip
    corral.wait_state("user", "running")
