"""The loop never blocks: 100 hung starts, and status, start and stop still answer at once;
destroy kills whole trees (double forks included) of a service and its dependents; actions
run with a timeout, and a call chain that would close a cycle is refused."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import sys
import time

from tests.conftest import missing
from tests.system.conftest import Corral, pid_alive, wait_until

HUNG = 100


def test_status_answers_at_once_while_a_hundred_starts_hang(corral: Corral) -> None:
    kinds = []
    text = ""
    for i in range(HUNG):
        kind = i % 3
        kinds.append(kind)
        if kind == 0:  # a pre_start that sleeps forever
            text += f'[service.h{i}]\nexec = "sleep 600"\npre_start = "sleep 600"\n'
        elif kind == 1:  # a notify service that never says READY
            text += f'[service.h{i}]\nexec = "sleep 600"\ntype = "notify"\n'
        else:  # a probe that never passes
            text += (
                f'[service.h{i}]\nexec = "sleep 600"\nready = {{ exec = "false", interval = 1 }}\n'
            )
    text += '[service.ok]\nexec = "sleep 600"\nautostart = false\n'
    corral.write(text)
    corral.up()
    expected = {0: "pre-start", 1: "spawned", 2: "spawned"}
    wait_until(
        lambda: all(
            r["state"] == expected[kinds[int(r["name"][1:])]]
            for r in corral.status()
            if r["name"] != "ok"
        ),
        30,
        "every hung service to show its transient state",
    )
    # The raw protocol round trip, and the CLI, while everything hangs.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(corral.socket)
    reader = sock.makefile("rb")
    times = []
    for _ in range(200):
        began = time.perf_counter()
        sock.sendall(b'{"cmd": "status"}\n')
        reader.readline()
        times.append(time.perf_counter() - began)
    sock.close()
    times.sort()
    p50, p99 = statistics.median(times) * 1000, times[int(len(times) * 0.99)] * 1000
    cli = []
    for _ in range(10):
        began = time.perf_counter()
        corral.ok("status")
        cli.append(time.perf_counter() - began)
    print(
        f"\nstatus with {HUNG} hung starts: protocol p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"CLI p50 {statistics.median(cli) * 1000:.0f} ms"
    )
    assert p99 < 250, f"status p99 {p99:.0f} ms while starts hang"
    # Other services start and stop normally meanwhile.
    began = time.monotonic()
    corral.ok("start", "ok")
    corral.ok("stop", "ok")
    assert time.monotonic() - began < 5
    # The hung ones can still be stopped (the pre_start hooks are signalled).
    corral.ok("stop", "h0", "h1", "h2", timeout=30)
    assert {corral.one(n)["state"] for n in ("h0", "h1", "h2")} == {"waiting"}


TREE = (
    # The main process double-forks a grandchild into its own session (out of the group).
    "( setsid sh -c 'echo $$ > {out}; exec sleep 600' & ) ; exec sleep 600"
)


def _destroy_scenario(corral: Corral, env: dict[str, str] | None = None) -> None:
    gc1, gc2, gc3 = (corral.root / f"gc{i}" for i in (1, 2, 3))
    corral.write(
        f"""
        [service.base]
        script = "{TREE.format(out=gc1)}"
        pre_stop = "sleep 600"
        autostart = false

        [service.dep]
        script = "{TREE.format(out=gc2)}"
        requires = ["base"]
        autostart = false

        [service.starting]
        exec = ["sleep", "600"]
        pre_start = "{TREE.format(out=gc3)}"
        wants = ["dep"]
        autostart = false

        [service.bystander]
        exec = ["sleep", "600"]
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "dep", "bystander")
    corral.run("start", "starting", "--no-wait")
    wait_until(lambda: gc1.exists() and gc2.exists() and gc3.exists(), 10, "the grandchildren")
    corral.wait_state("starting", "pre-start")
    pids = [int(p.read_text()) for p in (gc1, gc2, gc3)]
    pids += [corral.one(n)["pid"] for n in ("base", "dep")]
    assert all(pid_alive(p) for p in pids)
    bystander = corral.one("bystander")["pid"]
    began = time.monotonic()
    corral.ok("destroy", "base", timeout=20)
    took = time.monotonic() - began
    wait_until(lambda: not any(pid_alive(p) for p in pids), 5, "every process of the tree to die")
    for name in ("base", "dep", "starting"):
        row = corral.one(name)
        assert (row["goal"], row["state"], row["pid"]) == ("stop", "waiting", None), row
    assert corral.one("bystander")["state"] == "running" and pid_alive(bystander)
    assert took < 5, "destroy waited for pre_stop or stop_timeout"


def test_destroy_kills_double_forked_trees_of_a_service_and_its_dependents(
    corral: Corral,
) -> None:
    _destroy_scenario(corral)


def test_destroy_without_cgroups_finds_escaped_processes_in_proc(corral: Corral) -> None:
    os.environ["CORRAL_CGROUPS"] = "0"
    try:
        _destroy_scenario(corral)
    finally:
        del os.environ["CORRAL_CGROUPS"]


def test_actions_run_with_env_args_status_and_timeout(corral: Corral) -> None:
    corral.write(
        """
        [service.svc]
        exec = ["sleep", "600"]
        autostart = false
        [service.svc.actions]
        show = "echo pid=$MAINPID args=$* job=$CORRAL_JOB; exit 7"
        slow = { command = "sleep 30", timeout = 0.5 }
        listed = ["echo", "listed"]
        """
    )
    corral.up()
    corral.ok("start", "svc")
    pid = corral.one("svc")["pid"]
    result = corral.run("action", "svc", "show", "a", "b")
    assert result.returncode == 7
    assert result.stdout == f"pid={pid} args=a b job=svc\n"
    assert corral.ok("action", "svc", "listed", "x") == "listed x\n"
    began = time.monotonic()
    result = corral.run("action", "svc", "slow")
    assert result.returncode == 1 and "timed out" in result.stderr
    assert time.monotonic() - began < 5
    slow = f"CORRAL_SOCKET={corral.socket}".encode(), b"CORRAL_ACTION=slow"
    wait_until(
        lambda: not [pid for pid in _pids_with_env(*slow) if pid_alive(pid)],
        5,
        "the timed-out action to be killed",
    )
    result = corral.run("action", "svc", "nope")
    assert result.returncode == 2 and "no action 'nope'" in result.stderr
    assert corral.run("action", "ghost", "show").returncode == 3


def test_an_action_cycle_is_refused_not_deadlocked(corral: Corral) -> None:
    cli = f"{sys.executable} -m corral"
    corral.write(
        f"""
        [service.a]
        exec = ["sleep", "600"]
        actions = {{ ping = "echo a-ping; {cli} action b pong", hello = "echo hello from a" }}

        [service.b]
        exec = ["sleep", "600"]
        actions = {{ pong = "echo b-pong; {cli} action a ping", ask = "{cli} action a hello" }}
        """
    )
    corral.up()
    corral.wait_state("a", "running")
    began = time.monotonic()
    result = corral.run("action", "a", "ping", timeout=30)
    assert time.monotonic() - began < 10
    assert result.returncode == 1
    assert "a-ping" in result.stdout and "b-pong" in result.stdout
    assert "action call cycle refused: a/ping -> b/pong -> a/ping" in result.stdout
    # A chain without a cycle goes through.
    assert corral.ok("action", "b", "ask") == "hello from a\n"


def test_a_flood_of_exits_stays_quiet_and_sigterm_in_it_still_stops(corral: Corral) -> None:
    """500 children killed at once send more SIGCHLDs than the wakeup pipe holds. Nothing
    is printed about lost wakeups (that print could deadlock on stderr's lock), and a
    SIGTERM sent in the middle of the flood still stops every service and the daemon."""
    count = 500
    corral.write(
        "".join(
            f'[service.f{i}]\nexec = "sleep 600"\nrestart = "always"\nrestart_delay = 0\n'
            for i in range(count)
        )
    )
    process = corral.up()
    pids = wait_until(
        lambda: (
            len(rows := [r["pid"] for r in corral.status() if r["state"] == "running"]) == count
            and rows
        ),
        60,
        "all services running",
    )
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 0, corral.log()
    log = corral.log()
    assert "Exception ignored" not in log and "Traceback" not in log, log[-2000:]
    assert "all services stopped" in log
    mark = f"CORRAL_SOCKET={corral.socket}".encode()
    assert not [pid for pid in _pids_with_env(mark) if pid_alive(pid)]


def _pids_with_env(*entries: bytes) -> list[int]:
    """Processes whose environment holds every one of ``entries`` (what a daemon's
    children inherit)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as handle:
                    environ = handle.read().split(b"\0")
            except OSError:
                continue
            if all(entry in environ for entry in entries):
                found.append(int(name))
    return found


def test_a_double_fork_at_once_still_lands_in_the_cgroup_and_is_stopped(corral: Corral) -> None:
    """A child forks (and leaves its session) in its first moment, maybe before it is moved
    into the instance's cgroup: the grandchild is moved there too, so a plain stop kills it."""
    out = corral.root / "grandchild"
    corral.write(
        f"""
        [service.quick]
        script = "setsid sh -c 'echo $$ > {out}; exec sleep 600' & exec sleep 600"
        """
    )
    corral.up()
    main = corral.wait_state("quick", "running")["pid"]
    with open(f"/proc/{main}/cgroup") as handle:
        if "/corral-" not in handle.read():
            missing("a cgroup v2 hierarchy corral may write")
    wait_until(lambda: out.exists() and out.read_text().strip(), 10, "the grandchild")
    grandchild = int(out.read_text())

    def in_the_cgroup() -> bool:
        with open(f"/proc/{grandchild}/cgroup") as handle:
            return handle.read().strip().endswith("/quick")

    wait_until(in_the_cgroup, 5, "the grandchild in quick's cgroup")
    corral.ok("stop", "quick")
    wait_until(lambda: not pid_alive(grandchild), 5, "the grandchild to be killed")
