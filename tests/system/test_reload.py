"""The configuration lifecycle with a real daemon and real files edited, moved and deleted while
services run: precedence, overrides, reload (by command, by SIGHUP, by inotify), stale
instances, policy applied without a restart, removed services, and a reload storm."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from tests.system.conftest import Corral, env_of, pid_alive, wait_until


def running(corral: Corral, name: str) -> bool:
    return any(r["state"] == "running" for r in corral.status(name))


def service(name: str, **keys: str) -> str:
    body = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return f'[service.{name}]\nexec = ["sleep", "600"]\n{body}'


def test_precedence_stale_and_the_lesser_definition_returning(corral: Corral) -> None:
    a = corral.write(service("web", env='{ FROM = "a" }'), "a.toml")
    b = corral.write(service("web", env='{ FROM = "b" }'), "b.toml")
    corral.up("-c", str(a), "-c", str(b), "--socket", corral.socket)
    row = corral.wait_state("web", "running")
    assert env_of(row["pid"])["FROM"] == "b" and row["stale"] is False

    b.unlink()  # seen by inotify: a's definition is current again
    wait_until(lambda: corral.one("web")["stale"], what="web to show stale")
    assert corral.one("web")["pid"] == row["pid"], "a reload never touches a running instance"
    corral.ok("restart", "web")
    row = corral.one("web")
    assert env_of(row["pid"])["FROM"] == "a" and row["stale"] is False

    b.write_text(service("web", env='{ FROM = "b2" }'))  # b comes back, greater again
    wait_until(lambda: corral.one("web")["stale"], what="web stale again")
    corral.ok("restart", "web")
    assert env_of(corral.one("web")["pid"])["FROM"] == "b2"


def test_overrides_and_config_show(corral: Corral) -> None:
    corral.write(service("web", stop_timeout="5", env='{ A = "1" }'))
    (corral.root / "corral.d").mkdir()
    corral.write('env = { A = "2" }\n', "corral.d/web.override.toml")
    corral.write('[service.web]\noverride = true\nrestart = "always"\n', "corral.d/zz-more.toml")
    shown = corral.ok("config", "show", "web", "-c", "corral.toml", "-c", "corral.d")
    assert f'exec = ["sleep", "600"]  # {corral.root}/corral.toml:2' in shown, shown
    assert 'env = { A = "2" }' in shown and "web.override.toml:1" in shown, shown
    assert 'restart = "always"' in shown and "zz-more.toml:3" in shown, shown
    corral.up()
    row = corral.wait_state("web", "running")
    assert env_of(row["pid"])["A"] == "2"
    assert corral.ok("config", "show", "web") == shown  # the daemon's view, the same
    os.kill(row["pid"], signal.SIGKILL)  # restart = "always" came from the override
    wait_until(lambda: corral.one("web")["restarts"] == 1, what="a respawn")


def test_reload_by_command_new_definitions_for_new_starts(corral: Corral) -> None:
    corral.write(service("web", env='{ V = "1" }') + service("old"))
    corral.up(env={"CORRAL_WATCH": "0"})  # only explicit reloads in this test
    web = corral.wait_state("web", "running")
    old = corral.wait_state("old", "running")
    corral.write(service("web", env='{ V = "2" }') + service("new"))
    time.sleep(0.5)  # a window for what must not happen: no condition to wait on
    assert corral.one("web")["stale"] is False, "no watch: nothing reloaded by itself"
    out = corral.ok("config", "reload")
    assert "added: new" in out and "web (env)" in out and "removed: old" in out, out
    assert corral.one("web") | {"since": 0} == web | {"stale": True, "since": 0}
    wait_until(lambda: running(corral, "new"), what="new, autostarted")
    # The removed service keeps running, cannot be started anew, and goes when stopped.
    assert corral.one("old")["pid"] == old["pid"] and corral.one("old")["stale"] is False
    assert corral.run("start", "old").returncode == 3
    corral.ok("stop", "old")
    assert corral.status("old") == []
    assert corral.run("status", "old").returncode == 3


def test_a_policy_only_change_applies_without_a_restart(corral: Corral) -> None:
    corral.write(service("worker", restart='"no"', stop_timeout="10"))
    corral.up(env={"CORRAL_WATCH": "0"})  # the reply of this reload is what is checked
    row = corral.wait_state("worker", "running")
    corral.write(service("worker", restart='"always"', stop_timeout="2", description='"x"'))
    out = corral.ok("config", "reload")
    assert "applied to running instances: worker (description, restart*, stop_timeout)" in out
    after = corral.one("worker")
    assert after["pid"] == row["pid"] and after["stale"] is False
    assert after["description"] == "x"
    os.kill(row["pid"], signal.SIGKILL)  # the new respawn policy is the one in force
    wait_until(
        lambda: (r := corral.one("worker"))["restarts"] == 1 and r["state"] == "running",
        what="the respawn the new policy asks for",
    )


def test_a_reload_with_errors_changes_nothing(corral: Corral) -> None:
    corral.write(service("web") + service("db"))
    extra = corral.root / "corral.d"
    extra.mkdir()
    corral.up()
    before = {r["name"]: r for r in corral.status()}
    corral.write(service("web", stop_timeout='"soon"') + service("db"))
    corral.write('[service.x]\nexec = ["a"]\nwhile = "nobody and"\n', "corral.d/x.toml")
    result = corral.run("config", "reload")
    assert result.returncode == 1
    assert "corral.toml:3: service.web.stop_timeout: expected seconds" in result.stderr
    assert "x.toml:3: service.x.while: cannot read the condition" in result.stderr
    wait_until(
        lambda: "reload after a change refused, nothing changed" in corral.log(),
        10,
        "the watch, which saw the same files, to refuse them too",
    )
    after = {r["name"]: r for r in corral.status()}
    assert after == before
    assert all(pid_alive(r["pid"]) for r in after.values())


def test_files_edited_moved_and_deleted_are_seen(corral: Corral) -> None:
    corral.write(service("base"))
    drop = corral.root / "corral.d"
    drop.mkdir()
    corral.up()
    corral.wait_state("base", "running")
    temp = corral.root / "staging.toml"
    temp.write_text(service("moved"))
    os.rename(temp, drop / "moved.toml")  # as editors and deploy tools do
    wait_until(lambda: running(corral, "moved"), what="the moved-in service to run")
    (drop / "notes.txt").write_text("not a source")  # ignored
    (drop / "moved.toml").unlink()
    wait_until(lambda: corral.one("moved")["stale"] is False and "removed" in corral.log(),
               what="the removal")  # fmt: skip
    corral.ok("stop", "moved")
    assert corral.status("moved") == []
    os.kill(corral.process.pid if corral.process else 0, signal.SIGHUP)  # reload by signal
    wait_until(lambda: "reloaded after SIGHUP: no change" in corral.log(), what="SIGHUP reload")


def test_config_check_offline_finds_every_kind_of_error(corral: Corral) -> None:
    corral.write(
        """
        [service.a]
        exec = ["x"]
        colour = "blue"
        requires = ["b"]

        [service.b]
        exec = ["x"]
        requires = ["a"]
        stop_timeout = "soon"

        [service.c]
        exec = ["x"]
        start_on = "started a or"
        """
    )
    result = corral.run("config", "check")
    assert result.returncode == 1
    for expected in ('unknown key "colour"', "b.stop_timeout: expected seconds",
                     "c.start_on: cannot read the condition"):  # fmt: skip
        assert expected in result.stderr, result.stderr
    corral.write(
        service("a", requires='["b"]') + service("b", requires='["a"]')
        + service("c", requires='["ghost"]') + service("d", **{"while": '"ghost2"'})
    )  # fmt: skip
    result = corral.run("config", "check")
    assert result.returncode == 1
    assert 'no service or alias named "ghost"' in result.stderr
    corral.write(service("a", requires='["b"]') + service("b", requires='["a"]'))
    assert "a -> b -> a" in corral.run("config", "check").stderr
    corral.write(service("d", **{"while": '"ghost2"'}))
    assert (
        'service.d.while: no service or alias named "ghost2"'
        in corral.run("config", "check").stderr
    )
    corral.write("[service.e\n")
    assert "invalid TOML" in corral.run("config", "check").stderr


CONFIGS = [
    service("s0") + service("s1", restart='"always"') + service("s2") + service("gone"),
    service("s0", stop_timeout="3") + service("s1", restart='"always"', env='{ V = "2" }')
    + service("s2") + service("fresh", autostart="false"),
]  # fmt: skip


def test_a_reload_storm_while_services_start_and_stop(corral: Corral) -> None:
    corral.write(CONFIGS[0])
    corral.up()
    corral.wait_state("s0", "running")
    stop = threading.Event()
    errors: list[Any] = []
    reloaded = moves = 0

    def reloads() -> None:
        """At least 100 reloads, and on until 30 moves overlapped them (however fast either
        side is); the last one loads CONFIGS[1]."""
        nonlocal reloaded
        deadline = time.monotonic() + 60
        while reloaded < 100 or moves < 30 or reloaded % 2:
            if time.monotonic() > deadline and not reloaded % 2:
                break
            corral.write(CONFIGS[reloaded % 2])
            reply = corral.request("config_reload")
            if not reply["ok"]:
                errors.append(reply)
            reloaded += 1
        stop.set()

    thread = threading.Thread(target=reloads)
    thread.start()
    rng = random.Random(7)
    while not stop.is_set():
        name = rng.choice(["s0", "s1", "s2", "gone", "fresh"])
        cmd = rng.choice(["start", "stop", "restart"])
        corral.request(cmd, targets=[{"name": name}], wait=rng.random() < 0.3)
        moves += 1
    thread.join(timeout=120)
    assert not errors, errors[:3]
    assert reloaded >= 100 and moves >= 30, "the storm did not overlap with starts and stops"

    def settled() -> list[dict[str, Any]] | None:
        rows = corral.status()
        for row in rows:
            want = "running" if row["goal"] == "start" else ("waiting", "failed")
            if row["state"] not in want:
                return None
        return rows

    rows = wait_until(settled, 30, "every instance where its goal points")
    for row in rows:
        if row["state"] == "running":
            assert pid_alive(row["pid"]), row
    names = {r["name"] for r in rows}
    assert {"s0", "s1", "s2", "fresh"} <= names  # the last reload loaded CONFIGS[1]
    if "gone" in names:  # removed by it: only while an instance still runs
        assert corral.one("gone")["state"] == "running"
    print(f"\nreload storm: {reloaded} reloads, {moves} starts/stops/restarts meanwhile")


def test_the_definition_a_running_instance_keeps_is_the_one_it_started_with(
    corral: Corral, tmp_path: Path
) -> None:
    out = tmp_path / "hook"
    corral.write(service("web", post_stop=f'"echo old > {out}"'))
    corral.up()
    corral.wait_state("web", "running")
    corral.write(service("web", post_stop=f'"echo new > {out}"'))
    corral.ok("config", "reload")
    corral.ok("stop", "web")  # its stop hooks are those it started with
    assert out.read_text().strip() == "old"
    corral.ok("start", "web")
    corral.ok("stop", "web")
    assert out.read_text().strip() == "new"
