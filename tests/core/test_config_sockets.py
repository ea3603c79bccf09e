"""The keys of socket activation, the fd store, the watchdog and liveness: what loads, and
every way they can be wrong, each error naming file, service and key."""

from __future__ import annotations

import pytest

from corral.core.definition import ACCEPT_INSTANCE, Definition, SocketSpec
from corral.core.registry import load
from corral.errors import ConfigError


def defs(text: str, path: str = "/p/c.toml") -> dict[str, Definition]:
    return load([(path, text)])


def problems(text: str) -> list[str]:
    try:
        load([("c.toml", text)])
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_sockets_load_in_order_with_kind_address_name_and_mode() -> None:
    web = defs(
        """
        [service.web]
        exec = "serve"
        sockets = [
            { listen = "127.0.0.1:8000" },
            { listen = "[::1]:8001", name = "v6" },
            { listen = "udp:0.0.0.0:53", name = "dns" },
            { listen = "unix:run/web.sock", mode = "0660" },
            { listen = "unix:@abstract" },
            { listen = "localhost:9000" },
        ]
        """
    )["web"]
    assert web.sockets == (
        SocketSpec("tcp", "127.0.0.1", 8000),
        SocketSpec("tcp", "::1", 8001, "v6"),
        SocketSpec("udp", "0.0.0.0", 53, "dns"),
        SocketSpec("unix", "/p/run/web.sock", 0, "", 0o660),  # beside its config file
        SocketSpec("unix", "@abstract"),
        SocketSpec("tcp", "127.0.0.1", 9000),
    )
    assert [s.where for s in web.sockets[:3]] == ["127.0.0.1:8000", "[::1]:8001", "udp:0.0.0.0:53"]
    assert web.autostart and not web.on_connection and not web.accept


def test_on_connection_and_accept_are_not_started_at_up() -> None:
    loaded = defs(
        """
        [service.lazy]
        exec = "serve"
        sockets = [{ listen = "127.0.0.1:8000" }]
        activate = "on-connection"

        [service.echo]
        exec = "cat"
        sockets = [{ listen = "127.0.0.1:8001" }]
        accept = true
        max_connections = 2
        """
    )
    lazy, echo = loaded["lazy"], loaded["echo"]
    assert lazy.on_connection and not lazy.autostart and lazy.socket_activated
    assert echo.accept and not echo.autostart and echo.max_connections == 2
    assert echo.instance == ACCEPT_INSTANCE  # instantiated: one instance per connection


def test_watchdog_fd_store_and_liveness_load_with_their_defaults() -> None:
    loaded = defs(
        """
        [service.n]
        exec = "serve"
        type = "notify"
        watchdog = "2s"
        fd_store_max = 4

        [service.l]
        exec = "serve"
        liveness = { http = "http://127.0.0.1:8000/health", interval = "500ms", failures = 2 }

        [service.d]
        exec = "serve"
        liveness = { exec = "check" }
        """
    )
    n, live, d = loaded["n"], loaded["l"], loaded["d"]
    assert n.watchdog == 2.0 and n.fd_store_max == 4 and n.policy.watchdog == 2.0
    assert live.liveness is not None and live.liveness.failures == 2
    assert live.liveness.probe.kind == "http" and live.liveness.probe.interval == 0.5
    assert live.policy.liveness_failures == 2
    assert d.liveness is not None and (d.liveness.failures, d.liveness.probe.interval) == (3, 10)
    assert d.fd_store_max == 16 and d.watchdog is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('sockets = [{ listen = "nowhere" }]', 'expected "HOST:PORT", "udp:HOST:PORT"'),
        ('sockets = [{ listen = "example.com:80" }]', "not an IP address"),
        ('sockets = [{ listen = "127.0.0.1:0" }]', "a port from 1 to 65535"),
        ('sockets = [{ listen = "unix:" }]', 'expected "unix:PATH" with a path'),
        ("sockets = []", "expected a list of tables"),
        ("sockets = [{ port = 1 }]", "expected { listen = ..., name = ..., mode = ... }"),
        ('sockets = [{ listen = "127.0.0.1:1", name = "a:b" }]', 'but ":" and spaces'),
        ('sockets = [{ listen = "127.0.0.1:1", mode = "0600" }]', "mode is for a unix socket"),
        ('sockets = [{ listen = "unix:x", mode = "999" }]', "expected octal permissions"),
        (
            'sockets = [{ listen = "127.0.0.1:1" }, { listen = "127.0.0.1:1" }]',
            "socket 2: 127.0.0.1:1 is listed twice",
        ),
        ('activate = "on-connection"', "activate needs sockets"),
        ("accept = true", "accept needs sockets"),
        ('activate = "lazily"\nsockets = [{ listen = "127.0.0.1:1" }]', 'expected "on-connection"'),
        ('max_connections = 3\nsockets = [{ listen = "127.0.0.1:1" }]', "is for accept = true"),
        (
            'accept = true\nsockets = [{ listen = "udp:127.0.0.1:1" }]',
            "a udp socket has none",
        ),
        (
            'accept = true\ninstance = "${X}"\nsockets = [{ listen = "127.0.0.1:1" }]',
            "named by its peer",
        ),
        (
            'instance = "${X}"\nsockets = [{ listen = "127.0.0.1:1" }]',
            "its instances cannot share its sockets",
        ),
        (
            'ready_fd = 4\nsockets = [{ listen = "127.0.0.1:1" }, { listen = "127.0.0.1:2" }]',
            "ready_fd 4 is one of its sockets' fds (3 to 4)",
        ),
        ("watchdog = 5", 'watchdog is for type "notify"'),
        ("fd_store_max = 2", 'fd_store_max is for type "notify"'),
        ('type = "notify"\nwatchdog = 0', "expected a duration above 0"),
        ('type = "notify"\nfd_store_max = 5000', "expected an integer from 0 to 1024"),
        ('liveness = { tcp = "h:1", log = "x" }', "unknown liveness key"),
        ('liveness = { tcp = "h:1", http = "http://h" }', "exactly one of tcp, http, exec"),
        ('liveness = { tcp = "h" }', 'liveness.tcp: expected "HOST:PORT"'),
        ('liveness = { exec = "x", failures = 0 }', "liveness.failures: expected an integer"),
        ('type = "oneshot"\nliveness = { exec = "x" }', "liveness is for long-running types"),
    ],
)
def test_each_bad_key_names_the_service_and_key(line: str, expected: str) -> None:
    found = problems(f'[service.a]\nscript = "run"\n{line}\n')
    assert len(found) == 1, found
    assert expected in found[0], found
    assert "service.a." in found[0]


def test_a_state_refuses_sockets_watchdog_and_liveness() -> None:
    for line in ('sockets = [{ listen = "127.0.0.1:1" }]', "watchdog = 1", 'liveness = {exec="x"}'):
        found = problems(f"[service.s]\n{line}\n")
        assert any("a state (a service without exec or script)" in f for f in found), found


def test_two_services_cannot_listen_on_one_place() -> None:
    found = problems(
        """
        [service.a]
        exec = "x"
        sockets = [{ listen = "127.0.0.1:7000" }]
        [service.b]
        exec = "x"
        sockets = [{ listen = "udp:127.0.0.1:7000" }, { listen = "127.0.0.1:7000" }]
        """.replace("        ", "")
    )
    assert found == [
        "c.toml:7: service.b.sockets: 127.0.0.1:7000 is also a socket of a; only one service "
        "can listen there"
    ]
