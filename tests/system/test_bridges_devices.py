"""The devices bridge, for real: kernel uevents inside a network namespace the test makes,
where the links are the test's own (``tests/bridges/netns.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bridges.netns import ip, up_in_namespace, veth
from tests.system.conftest import Corral, wait_until

CONFIG = """
[service.per_link]
exec = ["sleep", "600"]
instance = "${KERNEL}"
while = "device(SUBSYSTEM=net, KERNEL=*)"

[service.added]
type = "oneshot"
exec = ["sh", "-c", "env > added-$$KERNEL.env", "${KERNEL}"]
instance = "${KERNEL}"
start_on = "device-added SUBSYSTEM=net"
"""


def running(corral: Corral, name: str) -> list[str]:
    return sorted(r["instance"] for r in corral.status(name) if r["state"] == "running")


def test_device_holds_for_what_existed_at_start_and_for_each_link_while_it_exists(
    corral: Corral,
) -> None:
    corral.write(CONFIG)
    pid = up_in_namespace(corral, "ip link add early0 type veth peer name early1")
    wait_until(lambda: running(corral, "per_link") == ["early0", "early1", "lo"], 15,
               "one instance per link that existed at start")  # fmt: skip
    veth(pid, "late0", "late1")
    wait_until(lambda: running(corral, "per_link") == ["early0", "early1", "late0", "late1",
               "lo"], 15, "an instance for each new link")  # fmt: skip
    ip(pid, "link", "del", "early0")  # its peer goes with it
    wait_until(lambda: running(corral, "per_link") == ["late0", "late1", "lo"], 15,
               "the instances of the removed links to stop")  # fmt: skip


def test_device_added_carries_the_uevents_keys_and_kernel(corral: Corral) -> None:
    corral.write(CONFIG)
    pid = up_in_namespace(corral)
    corral.wait_state("corral-bridge-devices", "running")
    wait_until(lambda: corral.one("corral-bridge-devices")["ready"], 15, "the bridge's report")
    veth(pid, "dev0", "dev1")
    env_file = Path(corral.root / "added-dev0.env")
    wait_until(env_file.exists, 15, "the job started by device-added")
    wait_until(lambda: "KERNEL=dev0" in env_file.read_text(), 5, "its environment")
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert env["ACTION"] == "add"
    assert env["SUBSYSTEM"] == "net"
    assert env["DEVPATH"].endswith("/net/dev0")
    assert env["INTERFACE"] == "dev0"
    assert env["KERNEL"] == "dev0"
    events = [json.loads(line) for line in corral.ok("events", "--json").splitlines()]
    assert any(e["name"] == "device-added" and e["env"].get("KERNEL") == "dev0" for e in events)
    ip(pid, "link", "del", "dev0")
    wait_until(lambda: any(
        e["name"] == "device-removed" and e["env"].get("KERNEL") == "dev1"
        for e in map(json.loads, corral.ok("events", "--json").splitlines())
    ), 15, "device-removed of the peer")  # fmt: skip
