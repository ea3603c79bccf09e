"""corral's own bridges as services: run exactly while a definition uses them, shown by
``status`` and ``config show``, restarted when killed while the daemon keeps answering, and
their names kept from user services. The files bridge stands for all three here (it needs no
namespace); ``test_bridges_devices.py`` and ``test_bridges_network.py`` run the others."""

from __future__ import annotations

import os
import signal
import time

from tests.bridges.netns import schedstat_ns, up_in_namespace
from tests.system.conftest import Corral, pid_alive, wait_until

USES_FILES = """
[service.plain]
exec = ["sleep", "600"]

[service.ready]
exec = ["sleep", "600"]
while = "path-exists(FILE={root}/ready)"
"""

PLAIN = """
[service.plain]
exec = ["sleep", "600"]
"""


def names(corral: Corral) -> list[str]:
    return [row["name"] for row in corral.status()]


def test_a_bridge_runs_exactly_while_a_definition_uses_it(corral: Corral) -> None:
    corral.write(PLAIN)
    corral.up()
    corral.wait_state("plain", "running")
    assert "corral-bridge-files" not in names(corral)
    corral.write(USES_FILES.format(root=corral.root))
    corral.ok("config", "reload")
    row = corral.wait_state("corral-bridge-files", "running")
    assert row["goal"] == "start"
    corral.write(PLAIN)
    corral.ok("config", "reload")
    wait_until(lambda: "corral-bridge-files" not in names(corral), 15, "the bridge to go")
    assert not pid_alive(row["pid"])


def test_a_bridge_starts_with_up_and_is_shown_by_config_show(corral: Corral) -> None:
    corral.write(USES_FILES.format(root=corral.root))
    corral.up()
    corral.wait_state("corral-bridge-files", "running")
    shown = corral.ok("config", "show", "corral-bridge-files")
    assert "<built-in>" in shown and "corral.bridges" in shown and "always" in shown


def test_config_check_refuses_a_user_service_named_like_a_bridge(corral: Corral) -> None:
    path = corral.write("""
        [service.corral-bridge-mine]
        exec = ["sleep", "600"]
        """)  # fmt: skip
    result = corral.run("config", "check")
    assert result.returncode == 1
    assert f"{path}:2: service.corral-bridge-mine:" in result.stderr
    assert "corral's own bridges" in result.stderr


def test_a_sigkilled_bridge_is_restarted_and_the_daemon_answers_throughout(
    corral: Corral,
) -> None:
    corral.write(USES_FILES.format(root=corral.root))
    daemon = corral.up()
    bridge = wait_until(lambda: (r := corral.one("corral-bridge-files"))["ready"] and r, 15,
                        "the bridge's report")  # fmt: skip
    os.kill(bridge["pid"], signal.SIGKILL)
    answered = 0

    def restarted() -> bool:
        nonlocal answered
        row = corral.one("corral-bridge-files")  # fails the test if the daemon does not answer
        answered += 1
        return row["restarts"] == 1 and row["ready"] and row["pid"] != bridge["pid"]

    wait_until(restarted, 15, "the bridge to be restarted")
    assert answered >= 2 and daemon.poll() is None
    (corral.root / "ready").write_text("")
    corral.wait_state("ready", "running")  # and the new one watches


def test_a_stopped_bridge_exits_cleanly_on_sigterm(corral: Corral) -> None:
    corral.write(USES_FILES.format(root=corral.root))
    corral.up()
    wait_until(lambda: corral.one("corral-bridge-files")["ready"], 15, "the bridge's report")
    corral.ok("stop", "corral-bridge-files")
    row = corral.one("corral-bridge-files")
    assert (row["state"], row["exit_status"], row["exit_signal"]) == ("waiting", 0, None)


def test_an_idle_corral_with_its_bridges_running_uses_no_cpu(corral: Corral) -> None:
    corral.write(USES_FILES.format(root=corral.root) + """
        [service.online]
        exec = ["sleep", "600"]
        while = "net-online"

        [service.per_link]
        exec = ["sleep", "600"]
        instance = "${KERNEL}"
        while = "device(SUBSYSTEM=net, KERNEL=*)"
        """.replace("\n        ", "\n"))  # fmt: skip
    daemon = up_in_namespace(corral)
    bridges = ("corral-bridge-devices", "corral-bridge-network", "corral-bridge-files")
    rows = [wait_until(lambda b=b: (r := corral.one(b))["ready"] and r, 30, b) for b in bridges]
    corral.wait_state("per_link", "running")
    pids = [daemon, *(row["pid"] for row in rows)]
    windows: list[list[int]] = []  # ns each one ran, per window of two seconds
    deadline = time.monotonic() + 12
    while not windows or any(windows[-1]):
        # The first windows may still see the start-up settle; a wakeup every two seconds
        # or less would never give an idle one.
        assert time.monotonic() < deadline, f"daemon, {', '.join(bridges)} never idle: {windows}"
        before = [schedstat_ns(pid) for pid in pids]
        time.sleep(2.0)  # what is measured is that nothing happens: no condition to wait on
        windows.append([schedstat_ns(pid) - start for pid, start in zip(pids, before, strict=True)])
