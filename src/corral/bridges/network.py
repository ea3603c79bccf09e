"""The network bridge: rtnetlink's addresses and routes as ``net-address-added`` /
``net-address-removed`` events and the ``net-online`` state.

``net-online`` holds while a default route and a global address exist: what "networking is
up" should have meant in the Shepherd seed, where transmission-daemon started before it
could bind. An address counts once it is usable (an IPv6 address still under duplicate
detection does not), and its events say so then: ``INTERFACE``, ``ADDRESS``, ``FAMILY``
(``inet``/``inet6``), with ``PREFIXLEN`` and ``SCOPE``.

It subscribes first, then asks for every link, address and route there is (one dump after
the other, on the same socket, so nothing that changes in between is missed); its first
report is the state found. Where the kernel dropped messages (``ENOBUFS``) or a dump was
interrupted, it asks again and reports the difference.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections import deque

from corral.bridges import rtnetlink as rt
from corral.bridges.link import Link, notify_ready

STATE = "net-online"
ADDED, REMOVED = "net-address-added", "net-address-removed"
RECEIVE_BUFFER = 4 * 1024 * 1024

#: The dumps that make up a full picture, in order (names first, for the addresses).
DUMPS = (rt.RTM_GETLINK, rt.RTM_GETADDR, rt.RTM_GETROUTE)


def open_socket() -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        rt.NETLINK_ROUTE,
    )  # fmt: skip
    for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            break
        except OSError:
            continue
    sock.bind((0, rt.GROUPS))
    return sock


class Network:
    """The links, usable addresses and default routes there are, and the reports of each
    change."""

    def __init__(self, link: Link, send: rt.Sender) -> None:
        self._link = link
        self._send = send  # writes one request to the netlink socket
        self.names: dict[int, str] = {}
        self.addresses: dict[tuple[int, str, str, int], rt.Address] = {}
        self.routes: set[rt.Route] = set()
        self.online = False
        self._dumps: deque[int] = deque()
        self._seq = 0
        self._before: dict[tuple[int, str, str, int], rt.Address] | None = None
        self._interrupted = False
        self.synced = False  # the first full picture was reported

    @property
    def syncing(self) -> bool:
        return bool(self._dumps)

    def sync(self) -> None:
        """Ask for everything there is; report it once every dump is in."""
        if self.synced:
            print("network: asking the kernel for everything again", file=sys.stderr)
            self._before = dict(self.addresses)
        self.addresses.clear()
        self.routes.clear()
        self._dumps = deque(DUMPS)
        self._interrupted = False
        self._next_dump()

    def _next_dump(self) -> None:
        self._seq += 1
        self._send(rt.dump_request(self._dumps[0], self._seq))

    def readable(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self._lost()
                continue
            for message in rt.messages(data):
                self.message(message)

    def _lost(self) -> None:
        if self.syncing:
            self._interrupted = True  # this dump may lack something: ask again at its end
        else:
            self.sync()

    def message(self, message: rt.Message) -> None:
        if message.flags & rt.NLM_F_DUMP_INTR:
            self._interrupted = True
        kind = message.kind
        if self.syncing and message.seq == self._seq:
            if kind == rt.NLMSG_ERROR and message.error:
                raise OSError(-message.error, f"the kernel refused a dump ({kind})")
            if kind == rt.NLMSG_DONE:
                self._dump_done()
                return
        if kind == rt.RTM_NEWLINK:
            interface = rt.parse_link(message.body)
            self.names[interface.ifindex] = interface.name
        elif kind in (rt.RTM_NEWADDR, rt.RTM_DELADDR):
            address = rt.parse_address(message.body)
            if address is not None:
                self._address(address, present=kind == rt.RTM_NEWADDR)
        elif kind in (rt.RTM_NEWROUTE, rt.RTM_DELROUTE):
            route = rt.parse_route(message.body)
            if route.is_default:
                (self.routes.add if kind == rt.RTM_NEWROUTE else self.routes.discard)(route)
        if not self.syncing:
            self._report_online()

    def _dump_done(self) -> None:
        self._dumps.popleft()
        if not self._dumps and self._interrupted:
            self._dumps = deque(DUMPS)  # something changed mid-dump: the picture may be off
            self._interrupted = False
        if self._dumps:
            self._next_dump()
            return
        if self._before is not None:
            for key, address in self._before.items():
                if key not in self.addresses:
                    self._emit(REMOVED, address)
            for key, address in self.addresses.items():
                if key not in self._before:
                    self._emit(ADDED, address)
            self._before = None
        self.online = self.is_online()
        self._link.replace_states([(STATE, {})] if self.online else [])
        if not self.synced:
            self.synced = True
            notify_ready()

    def _address(self, address: rt.Address, present: bool) -> None:
        key = address.key
        known = key in self.addresses
        if present and address.usable:
            self.addresses[key] = address
            if not known and not self.syncing:
                self._emit(ADDED, address)
        elif known:
            del self.addresses[key]
            if not self.syncing:
                self._emit(REMOVED, address)

    def is_online(self) -> bool:
        """A default route and a global address exist."""
        return bool(self.routes) and any(a.scope == 0 for a in self.addresses.values())

    def _report_online(self) -> None:
        online = self.is_online()
        if online != self.online:
            self.online = online
            (self._link.hold if online else self._link.release)(STATE, {})

    def _emit(self, event: str, address: rt.Address) -> None:
        self._link.emit(event, {
            "INTERFACE": self.names.get(address.ifindex) or address.label or str(address.ifindex),
            "ADDRESS": address.address,
            "FAMILY": address.family,
            "PREFIXLEN": str(address.prefixlen),
            "SCOPE": rt.SCOPES.get(address.scope, str(address.scope)),
        })  # fmt: skip


async def serve(link: Link) -> None:
    loop = asyncio.get_running_loop()
    with open_socket() as sock:
        network = Network(link, sock.send)
        loop.add_reader(sock.fileno(), network.readable, sock)
        try:
            network.sync()
            await loop.create_future()  # until cancelled
        finally:
            loop.remove_reader(sock.fileno())
