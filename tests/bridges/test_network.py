"""The network bridge's reading of rtnetlink and its idea of "online", on messages the test
packs (the kernel's own are in ``tests/system/test_bridges_network.py``)."""

from __future__ import annotations

import socket
import struct

from corral.bridges import rtnetlink as rt
from corral.bridges.network import Network
from tests.bridges.fakes import RecordingLink


def attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + b"\0" * (-length % 4)


def message(kind: int, body: bytes, seq: int = 0, flags: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def link(index: int, name: str) -> bytes:
    body = struct.pack("=BxHiII", 0, 1, index, 0, 0) + attr(rt.IFLA_IFNAME, name.encode() + b"\0")
    return message(rt.RTM_NEWLINK, body)


def address(kind: int, index: int, ip: str, prefix: int, scope: int = 0, flags: int = 0) -> bytes:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    raw = socket.inet_pton(family, ip)
    body = struct.pack("=BBBBI", family, prefix, flags & 0xFF, scope, index)
    body += attr(rt.IFA_ADDRESS, raw) + attr(rt.IFA_FLAGS, struct.pack("=I", flags))
    return message(kind, body)


def default_route(kind: int, gateway: str = "192.0.2.254", table: int = 254) -> bytes:
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, table, 4, 0, rt.RTN_UNICAST, 0)
    body += attr(rt.RTA_GATEWAY, socket.inet_aton(gateway)) + attr(rt.RTA_OIF, b"\2\0\0\0")
    return message(kind, body)


def synced() -> tuple[Network, RecordingLink, list[bytes]]:
    """A Network that asked for its three dumps and got them, with ``v0`` (index 2) only."""
    link_ = RecordingLink()
    sent: list[bytes] = []
    network = Network(link_, sent.append)  # type: ignore[arg-type]
    network.sync()
    feed(network, link(2, "v0"))
    for seq in (1, 2, 3):
        feed(network, message(rt.NLMSG_DONE, b"\0" * 4, seq=seq))
    return network, link_, sent


def feed(network: Network, data: bytes) -> None:
    for parsed in rt.messages(data):
        network.message(parsed)


def test_the_dumps_are_asked_one_after_the_other_then_the_state_reported() -> None:
    _, said, sent = synced()
    kinds = [struct.unpack_from("=IHH", request)[1] for request in sent]
    assert kinds == [rt.RTM_GETLINK, rt.RTM_GETADDR, rt.RTM_GETROUTE]
    assert said.take() == [("replace", [])]


def test_online_needs_a_default_route_and_a_usable_global_address() -> None:
    network, said, _ = synced()
    said.take()
    feed(network, address(rt.RTM_NEWADDR, 2, "fe80::1", 64, scope=253))
    feed(network, default_route(rt.RTM_NEWROUTE))
    feed(network, address(rt.RTM_NEWADDR, 2, "2001:db8::1", 64, flags=rt.IFA_F_TENTATIVE))
    assert ("hold", ("net-online", {})) not in said.take()
    feed(network, address(rt.RTM_NEWADDR, 2, "2001:db8::1", 64))  # duplicate detection done
    assert said.take() == [
        ("emit", ("net-address-added", {"INTERFACE": "v0", "ADDRESS": "2001:db8::1",
                  "FAMILY": "inet6", "PREFIXLEN": "64", "SCOPE": "global"})),
        ("hold", ("net-online", {})),
    ]  # fmt: skip
    feed(network, default_route(rt.RTM_DELROUTE))
    assert said.take() == [("release", ("net-online", {}))]


def test_a_route_in_the_local_table_is_no_default_route() -> None:
    network, _, _ = synced()
    feed(network, address(rt.RTM_NEWADDR, 2, "192.0.2.1", 24))
    feed(network, default_route(rt.RTM_NEWROUTE, table=rt.RT_TABLE_LOCAL))
    assert not network.online


def test_an_address_is_added_once_and_removed_once() -> None:
    network, said, _ = synced()
    said.take()
    for _ in range(2):  # the kernel sends NEWADDR again when only the lifetimes change
        feed(network, address(rt.RTM_NEWADDR, 2, "192.0.2.1", 24))
    for _ in range(2):
        feed(network, address(rt.RTM_DELADDR, 2, "192.0.2.1", 24))
    assert [(kind, what[0], what[1]["ADDRESS"]) for kind, what in said.take()] == [
        ("emit", "net-address-added", "192.0.2.1"), ("emit", "net-address-removed", "192.0.2.1")]  # fmt: skip


def test_what_existed_before_the_bridge_is_state_not_events() -> None:
    said = RecordingLink()
    network = Network(said, lambda request: None)  # type: ignore[arg-type]
    network.sync()
    feed(network, link(2, "v0"))
    feed(network, message(rt.NLMSG_DONE, b"\0" * 4, seq=1))
    feed(network, address(rt.RTM_NEWADDR, 2, "192.0.2.1", 24))
    feed(network, message(rt.NLMSG_DONE, b"\0" * 4, seq=2))
    feed(network, default_route(rt.RTM_NEWROUTE))
    feed(network, message(rt.NLMSG_DONE, b"\0" * 4, seq=3))
    assert said.take() == [("replace", [("net-online", {})])]


def test_after_lost_messages_it_asks_again_and_reports_the_difference() -> None:
    network, said, _ = synced()
    feed(network, address(rt.RTM_NEWADDR, 2, "192.0.2.1", 24))
    said.take()
    network.sync()  # what ENOBUFS does
    feed(network, message(rt.NLMSG_DONE, b"\0" * 4, seq=4))
    feed(network, address(rt.RTM_NEWADDR, 2, "198.51.100.1", 24))
    feed(network, message(rt.NLMSG_DONE, b"\0" * 4, seq=5))
    feed(network, message(rt.NLMSG_DONE, b"\0" * 4, seq=6))
    assert [(kind, what[0] if kind == "emit" else what) for kind, what in said.take()] == [
        ("emit", "net-address-removed"), ("emit", "net-address-added"), ("replace", [])]  # fmt: skip
