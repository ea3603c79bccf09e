"""The wire protocol, bytes in and out: every malformed line is a ProtocolError, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.control.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    VersionMismatch,
    decode_request,
    encode,
    error,
    hello,
    ok,
)
from corral.control.version import older_daemon
from corral.errors import EXIT_UNREACHABLE


def test_well_formed_requests() -> None:
    req = decode_request(
        b'{"cmd": "start", "targets": [{"name": "a", "env": {"K": "v"}}], "wait": false}\n'
    )
    assert req.cmd == "start" and req.args["wait"] is False
    assert decode_request(b'{"cmd": "status", "id": 7}').args == {}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"nope", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"cmd": 1}', "'cmd'"),
        (b'{"cmd": "fly"}', "unknown command"),
        (b'{"cmd": "status", "names": "a"}', "'names'"),
        (b'{"cmd": "start", "targets": []}', "non-empty"),
        (b'{"cmd": "start", "targets": [{"name": "a", "x": 1}]}', "only name, instance and env"),
        (b'{"cmd": "start", "targets": [{"name": "a", "env": {"K": 1}}]}', "'env'"),
        (b'{"cmd": "wait", "timeout": -1}', "'timeout'"),
        (b'{"cmd": "logs", "name": "a", "lines": true}', "'lines'"),
        (b'{"cmd": "ping", "extra": 1}', "unknown argument"),
        (b'{"cmd": "logs", "name": "a", "targets": []}', "not both"),
        (b'{"cmd": "start", "targets": [{"name": "a"}], "progress": 1}', "'progress'"),
        (b'{"cmd": "emit", "env": {}}', "emit: missing argument"),
        (b'{"cmd": "emit", "event": "x", "env": {"A": 1}}', "'env'"),
        (b'{"cmd": "config_show"}', "config_show: missing argument"),
    ],
)
def test_malformed_requests_say_what_is_wrong(line: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        decode_request(line)


@given(st.binary(max_size=300))
def test_garbage_bytes_never_raise_anything_but_protocol_error(line: bytes) -> None:
    try:
        decode_request(line)
    except ProtocolError:
        pass


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3)))  # fmt: skip
def test_any_json_value_is_answered(value: object) -> None:
    line = encode({"cmd": "start", "targets": value})
    try:
        decode_request(line)
    except ProtocolError:
        pass


def test_replies_are_one_line() -> None:
    assert encode(ok([1])) == b'{"ok":true,"result":[1]}\n'
    assert encode(error(3, "no such service: x")).count(b"\n") == 1


def test_every_accepted_argument_has_a_check() -> None:
    """An argument a command accepts but nothing checks once made the handler raise."""
    from corral.control.protocol import _CHECKS, COMMANDS

    assert set().union(*COMMANDS.values()) <= set(_CHECKS)


def test_a_request_of_this_version_is_taken_and_the_version_is_not_an_argument() -> None:
    line = encode({"cmd": "status", "v": PROTOCOL_VERSION, "names": ["web"]})
    assert decode_request(line).args == {"names": ["web"]}
    assert decode_request(b'{"cmd": "logs"}').args == {}  # every service


@pytest.mark.parametrize("version", [1, PROTOCOL_VERSION + 1, "2", None, True])
def test_a_request_of_another_version_is_refused_with_code_4_naming_both(version: object) -> None:
    with pytest.raises(VersionMismatch) as caught:
        decode_request(encode({"cmd": "ping", "v": version}))
    assert caught.value.code == EXIT_UNREACHABLE
    message = str(caught.value)
    assert f"protocol {version!r}" in message and f"protocol {PROTOCOL_VERSION}" in message


def test_hello_says_both_versions() -> None:
    from corral import __version__

    assert decode_request(b'{"cmd": "hello"}').cmd == "hello"
    assert hello() == {"protocol": PROTOCOL_VERSION, "corral": __version__}


def test_a_protocol_1_daemon_refusing_v_is_told_apart() -> None:
    assert older_daemon("status: unknown argument(s) v")
    assert older_daemon("start: unknown argument(s) progress, v")
    assert not older_daemon("start: unknown argument(s) vv")
    assert not older_daemon("no such service: v")
