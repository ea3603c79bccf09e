"""The network bridge, for real: rtnetlink inside a network namespace the test makes, with
addresses and routes on links of its own (``tests/bridges/netns.py``)."""

from __future__ import annotations

import json
from typing import Any

from tests.bridges.netns import ip, up_in_namespace, veth
from tests.system.conftest import Corral, wait_until

CONFIG = """
[service.transmission]
exec = ["sleep", "600"]
while = "net-online"

[service.on_address]
exec = ["sleep", "600"]
instance = "${INTERFACE}"
start_on = "net-address-added FAMILY=inet"
stop_on = "net-address-removed FAMILY=inet INTERFACE=$INTERFACE"
"""


def linked(corral: Corral, before: str = "true") -> int:
    """The daemon in a namespace with a veth pair ``v0``/``v1``, both up, no address."""
    corral.write(CONFIG)
    pid = up_in_namespace(corral, before)
    veth(pid, "v0", "v1")
    ip(pid, "link", "set", "v0", "up")
    ip(pid, "link", "set", "v1", "up")
    wait_until(lambda: corral.one("corral-bridge-network")["ready"], 15, "the bridge's report")
    return pid


def events(corral: Corral, name: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in corral.ok("events", "--json").splitlines()]
    return [record["env"] for record in records if record["name"] == name]


def test_net_online_holds_while_a_default_route_and_a_global_address_exist(
    corral: Corral,
) -> None:
    pid = linked(corral)
    ip(pid, "addr", "add", "192.0.2.1/24", "dev", "v0")
    assert corral.one("transmission")["state"] == "waiting"  # an address, but no route
    ip(pid, "route", "add", "default", "via", "192.0.2.254")
    first = corral.wait_state("transmission", "running", 15)["pid"]
    ip(pid, "route", "del", "default")
    corral.wait_state("transmission", "waiting", 15)
    ip(pid, "route", "add", "default", "via", "192.0.2.254")
    assert corral.wait_state("transmission", "running", 15)["pid"] != first
    ip(pid, "addr", "del", "192.0.2.1/24", "dev", "v0")  # its route goes with it
    corral.wait_state("transmission", "waiting", 15)


def test_net_online_is_true_at_start_when_the_network_already_is(corral: Corral) -> None:
    corral.write(CONFIG)
    up_in_namespace(corral, "ip link add v0 type veth peer name v1 && ip link set v0 up && "
                    "ip link set v1 up && ip addr add 192.0.2.1/24 dev v0 && "
                    "ip route add default via 192.0.2.254")  # fmt: skip
    corral.wait_state("transmission", "running", 15)


def test_address_events_carry_interface_address_and_family(corral: Corral) -> None:
    pid = linked(corral)
    ip(pid, "addr", "add", "198.51.100.7/24", "dev", "v1")
    wait_until(lambda: [r["instance"] for r in corral.status("on_address")
                        if r["state"] == "running"] == ["v1"], 15, "the job per interface")  # fmt: skip
    added = [env for env in events(corral, "net-address-added") if env["FAMILY"] == "inet"]
    assert added == [{"INTERFACE": "v1", "ADDRESS": "198.51.100.7", "FAMILY": "inet",
                      "PREFIXLEN": "24", "SCOPE": "global"}]  # fmt: skip
    ip(pid, "addr", "del", "198.51.100.7/24", "dev", "v1")
    wait_until(lambda: not [r for r in corral.status("on_address") if r["state"] == "running"],
               15, "the job to stop on net-address-removed")  # fmt: skip
    removed = [env for env in events(corral, "net-address-removed") if env["FAMILY"] == "inet"]
    assert [(env["INTERFACE"], env["ADDRESS"]) for env in removed] == [("v1", "198.51.100.7")]
