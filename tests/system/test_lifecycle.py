"""Start, stop, restart, status and exit codes against a real daemon and real processes."""

from __future__ import annotations

import os
import stat
import time

from tests.system.conftest import Corral, pid_alive, wait_until

STATUS_KEYS = {
    "name", "instance", "goal", "state", "pid", "ready", "restarts",
    "exit_status", "exit_signal", "since", "stale",
}  # fmt: skip


def test_up_starts_autostart_services_and_status_has_every_contract_field(corral: Corral) -> None:
    corral.write(
        """
        [service.sleeper]
        exec = ["sleep", "60"]

        [service.manual]
        exec = "sleep 60"
        autostart = false
        """
    )
    corral.up()
    row = corral.wait_state("sleeper", "running")
    assert set(row) >= STATUS_KEYS
    assert row["goal"] == "start" and row["ready"] is True and pid_alive(row["pid"])
    assert row["instance"] == "" and row["stale"] is False and row["restarts"] == 0
    assert abs(row["since"] - time.time()) < 30
    manual = corral.one("manual")
    assert (manual["goal"], manual["state"], manual["pid"]) == ("stop", "waiting", None)


def test_start_stop_restart_block_until_done(corral: Corral) -> None:
    corral.write(
        """
        [service.a]
        exec = ["sleep", "60"]
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "a")
    row = corral.one("a")
    assert row["state"] == "running" and pid_alive(row["pid"])
    first = row["pid"]
    corral.ok("restart", "a")
    row = corral.one("a")
    assert row["state"] == "running" and row["pid"] != first and not pid_alive(first)
    second = row["pid"]
    corral.ok("stop", "a")
    row = corral.one("a")
    assert (row["goal"], row["state"], row["pid"]) == ("stop", "waiting", None)
    assert not pid_alive(second), "stop returned while the stopped process still ran"


def test_exit_codes_follow_the_contract(corral: Corral) -> None:
    corral.write(
        """
        [service.ok]
        exec = ["sleep", "60"]

        [service.missing]
        exec = ["/nonexistent/binary"]
        autostart = false
        """
    )
    assert corral.run("status").returncode == 4  # no daemon yet
    corral.up()
    assert corral.run("start", "nosuch").returncode == 3
    assert corral.run("status", "nosuch").returncode == 3
    assert corral.run("bogus-command").returncode == 2
    assert corral.run("start").returncode == 2
    failed = corral.run("start", "missing")
    assert failed.returncode == 1
    assert "/nonexistent/binary" in failed.stderr and "not found" in failed.stderr
    row = corral.one("missing")
    assert (row["goal"], row["state"]) == ("stop", "failed")
    assert corral.one("ok")["state"] == "running"  # untouched


def test_no_wait_returns_at_once(corral: Corral) -> None:
    corral.write(
        """
        [service.slow]
        exec = ["sleep", "60"]
        pre_start = "sleep 2"
        autostart = false
        """
    )
    corral.up()
    began = time.monotonic()
    corral.ok("start", "slow", "--no-wait")
    assert time.monotonic() - began < 1.5
    assert corral.one("slow")["state"] == "pre-start"
    corral.wait_state("slow", "running", 10)


def test_stop_during_a_hung_pre_start_ends_cleanly_stopped(corral: Corral) -> None:
    corral.write(
        """
        [service.hung]
        exec = ["sleep", "60"]
        pre_start = "echo hook=$$; exec sleep 600"
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "hung", "--no-wait")
    corral.wait_state("hung", "pre-start")
    hook = int(wait_until(lambda: _find(corral.ok("logs", "hung"), "hook="), 5, "the hook's pid"))
    began = time.monotonic()
    corral.ok("stop", "hung")
    assert time.monotonic() - began < 5
    row = corral.one("hung")
    assert (row["goal"], row["state"], row["pid"]) == ("stop", "waiting", None)
    assert not pid_alive(hook), "the stop left the hung pre_start running"


def test_start_during_stop_ends_running(corral: Corral) -> None:
    corral.write(
        """
        [service.lingering]
        script = "trap 'sleep 1; exit 0' TERM; while true; do sleep 0.1; done"
        """
    )
    corral.up()
    corral.wait_state("lingering", "running")
    corral.ok("stop", "lingering", "--no-wait")
    corral.wait_state("lingering", "killed", 5)
    corral.ok("start", "lingering")
    row = corral.one("lingering")
    assert (row["goal"], row["state"]) == ("start", "running") and pid_alive(row["pid"])


def test_stop_timeout_escalates_to_sigkill_of_the_whole_group(corral: Corral) -> None:
    corral.write(
        """
        [service.stubborn]
        script = "trap '' TERM; sleep 600 & echo child=$!; while true; do sleep 0.1; done"
        stop_timeout = "300ms"
        """
    )
    corral.up()
    corral.wait_state("stubborn", "running")
    child = int(wait_until(lambda: _find(corral.ok("logs", "stubborn"), "child="), 5, "child pid"))
    began = time.monotonic()
    corral.ok("stop", "stubborn")
    assert time.monotonic() - began < 5
    assert corral.one("stubborn")["exit_signal"] == "KILL"
    wait_until(lambda: not pid_alive(child), 5, "the grandchild to be killed")


def _find(text: str, prefix: str) -> str | None:
    for word in text.split():
        if word.startswith(prefix):
            return word[len(prefix) :]
    return None


def test_socket_is_private_and_corral_socket_is_honoured(
    corral: Corral, tmp_path: os.PathLike[str]
) -> None:
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    custom = os.path.join(str(tmp_path), "elsewhere.sock")
    corral.socket = custom
    corral.up("--socket", custom)
    mode = stat.S_IMODE(os.stat(custom).st_mode)
    assert mode == 0o600
    assert corral.run("status", env={"CORRAL_SOCKET": custom}).returncode == 0


def test_reload_sends_the_reload_signal(corral: Corral) -> None:
    corral.write(
        """
        [service.r]
        script = "trap 'echo got-usr1' USR1; echo trap-set; while true; do sleep 0.1; done"
        reload_signal = "USR1"
        """
    )
    corral.up()
    corral.wait_state("r", "running")
    wait_until(lambda: "trap-set" in corral.ok("logs", "r"), 5, "the shell to install its trap")
    corral.ok("reload", "r")
    wait_until(lambda: "got-usr1" in corral.ok("logs", "r"), 5, "the trap to fire")


def test_wait_returns_when_ready_and_times_out_otherwise(corral: Corral) -> None:
    corral.write(
        """
        [service.later]
        exec = ["sleep", "60"]
        pre_start = "sleep 0.5"

        [service.never]
        exec = ["sleep", "60"]
        pre_start = "sleep 600"
        autostart = false
        """
    )
    corral.up()
    corral.ok("wait", "later", "--timeout", "10")
    assert corral.one("later")["state"] == "running"
    corral.ok("start", "never", "--no-wait")
    result = corral.run("wait", "never", "--timeout", "0.5")
    assert result.returncode == 1 and "timed out" in result.stderr


def test_down_stops_everything_and_the_daemon_exits(corral: Corral) -> None:
    corral.write(
        """
        [service.a]
        exec = ["sleep", "60"]
        [service.b]
        exec = ["sleep", "60"]
        """
    )
    process = corral.up()
    pids = [corral.wait_state(n, "running")["pid"] for n in ("a", "b")]
    corral.ok("down")
    assert process.wait(timeout=10) == 0
    assert not any(pid_alive(p) for p in pids)
    assert not os.path.exists(corral.socket)


def test_detached_up_returns_once_the_socket_accepts(corral: Corral) -> None:
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    result = corral.run("up", "-d", timeout=30)
    assert result.returncode == 0, result.stderr
    assert corral.run("status").returncode == 0
    corral.ok("down")
    wait_until(lambda: not os.path.exists(corral.socket), 10, "the daemon to exit")


def test_detached_up_with_a_bad_config_fails_and_says_why(corral: Corral) -> None:
    corral.write('[service.a]\nexec = ["sleep", "60"]\nstop_timeout = "soon"\n')
    result = corral.run("up", "-d", timeout=30)
    assert result.returncode == 1
    assert "stop_timeout" in result.stderr and "corral.toml:3" in result.stderr
