"""rtnetlink messages, as much of them as the network bridge reads: links (their names),
addresses, routes. Pure parsing and packing; the socket is ``network.py``'s.

Each message is a ``nlmsghdr`` (length, type, flags, sequence, port) followed by a fixed
header of its family (``ifinfomsg``, ``ifaddrmsg``, ``rtmsg``) and attributes (length, type,
value), every part aligned to 4 bytes (``man 7 rtnetlink``).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple

NETLINK_ROUTE = 0
#: Multicast groups: links, IPv4 and IPv6 addresses and routes.
GROUPS = 0x1 | 0x10 | 0x40 | 0x100 | 0x400

NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 2, 3, 4
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLM_F_DUMP_INTR = 0x10

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

IFLA_IFNAME = 3
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS = 1, 2, 3, 8
RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 4, 5, 6, 15

#: An address not usable yet (IPv6 duplicate detection under way) or never (it failed).
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40
RT_TABLE_LOCAL = 255
RTN_UNICAST = 1

_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")

#: Writes one request to the netlink socket.
Sender = Callable[[bytes], object]

FAMILIES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}
SCOPES = {0: "global", 200: "site", 253: "link", 254: "host"}


class Message(NamedTuple):
    kind: int  # the nlmsghdr type
    flags: int
    seq: int
    body: bytes
    error: int = 0  # of an NLMSG_ERROR: the negative errno (0: an acknowledgement)


class Interface(NamedTuple):
    ifindex: int
    name: str


class Address(NamedTuple):
    ifindex: int
    family: str
    address: str
    prefixlen: int
    scope: int
    flags: int
    label: str = ""

    @property
    def usable(self) -> bool:
        return not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)

    @property
    def key(self) -> tuple[int, str, str, int]:
        return (self.ifindex, self.family, self.address, self.prefixlen)


class Route(NamedTuple):
    family: int
    dst_len: int
    table: int
    kind: int  # RTN_*
    oif: int
    gateway: str
    priority: int

    @property
    def is_default(self) -> bool:
        return self.dst_len == 0 and self.kind == RTN_UNICAST and self.table != RT_TABLE_LOCAL


def _align(length: int) -> int:
    return (length + 3) & ~3


def messages(data: bytes) -> Iterator[Message]:
    """The messages of one datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, flags, seq, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            return
        body = data[offset + _HEADER.size : offset + length]
        error = struct.unpack_from("=i", body)[0] if kind == NLMSG_ERROR and body else 0
        yield Message(kind, flags, seq, body, error)
        offset += _align(length)


def attributes(data: bytes, offset: int) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        found[kind & 0x3FFF] = data[offset + _ATTR.size : offset + length]
        offset += _align(length)
    return found


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace")


def _ip(family: int, value: bytes) -> str:
    return socket.inet_ntop(family, value) if value else ""


def parse_link(body: bytes) -> Interface:
    _family, _type, index, _flags, _change = _IFINFO.unpack_from(body)
    attrs = attributes(body, _IFINFO.size)
    return Interface(index, _text(attrs.get(IFLA_IFNAME, b"")))


def parse_address(body: bytes) -> Address | None:
    """None for a family other than IPv4 and IPv6."""
    family, prefixlen, flags, scope, index = _IFADDR.unpack_from(body)
    if family not in FAMILIES:
        return None
    attrs = attributes(body, _IFADDR.size)
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS) or b""  # LOCAL: ours, on a p-t-p link
    if IFA_FLAGS in attrs:
        flags = struct.unpack("=I", attrs[IFA_FLAGS][:4])[0]
    label = _text(attrs.get(IFA_LABEL, b""))
    return Address(index, FAMILIES[family], _ip(family, raw), prefixlen, scope, flags, label)


def parse_route(body: bytes) -> Route:
    family, dst_len, _src, _tos, table, _proto, _scope, kind, _flags = _RTMSG.unpack_from(body)
    attrs = attributes(body, _RTMSG.size)
    if RTA_TABLE in attrs:
        table = struct.unpack("=I", attrs[RTA_TABLE][:4])[0]
    oif = struct.unpack("=I", attrs[RTA_OIF][:4])[0] if RTA_OIF in attrs else 0
    priority = struct.unpack("=I", attrs[RTA_PRIORITY][:4])[0] if RTA_PRIORITY in attrs else 0
    gateway = _ip(family, attrs.get(RTA_GATEWAY, b"")) if family in FAMILIES else ""
    return Route(family, dst_len, table, kind, oif, gateway, priority)


def dump_request(kind: int, seq: int) -> bytes:
    """Ask for every link, address or route there is (``RTM_GET*`` with ``NLM_F_DUMP``)."""
    header = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)  # an ifinfomsg's worth
    if kind == RTM_GETADDR:
        header = _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    elif kind == RTM_GETROUTE:
        header = _RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)
    length = _HEADER.size + len(header)
    return _HEADER.pack(length, kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + header
