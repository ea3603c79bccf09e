"""The protocol fuzz at small size, hypothesis's lines against a real daemon, and the bugs
the fuzz found (reliability/protocol_fuzz.py, protocol_cases.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corral.control.protocol import PROTOCOL_VERSION
from reliability import protocol_cases as cases
from reliability import protocol_fuzz
from reliability.harness import Client, Daemon, NoReply, run_dir
from tests.system.conftest import Corral, wait_until


@pytest.mark.timeout(300)
def test_the_protocol_fuzz_at_small_size_passes() -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    report = protocol_fuzz.run(protocol_fuzz.SMALL, seed=seed)
    print(report.text())
    assert report.ok, f"seed {seed}\n{report.text()}"


def test_every_command_of_the_protocol_is_fuzzed() -> None:
    """A command added to COMMANDS is fuzzed too (all but ``down``, which ends the daemon)."""
    assert cases.missing_commands() == set()


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with run_dir(None, "hypothesis") as root, Daemon(root, cases.CONFIG) as running:
        running.start()
        yield running
        assert running.alive(), running.log()[-3000:]
        assert "internal error" not in running.log(), running.log()[-3000:]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def swapped_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A real request with one value anywhere in it replaced by any JSON value."""
    request = {**draw(st.sampled_from(cases.REAL)), "v": PROTOCOL_VERSION}
    path = draw(st.sampled_from(list(cases.value_paths(request))))
    swapped: dict[str, Any] = cases.replaced(request, path, draw(json_values))
    return swapped


def _answered(daemon: Daemon, line: bytes, then_ping: bool) -> dict[str, Any]:
    with Client(daemon.socket, timeout=20) as client:
        reply = client.send_line(line)
        if then_ping:
            assert client.request("ping")["ok"] is True, "the connection stopped serving"
    return reply


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=swapped_requests())
def test_a_real_request_with_any_value_swapped_gets_a_reply(
    daemon: Daemon, request: dict[str, Any]
) -> None:
    cmd = request.get("cmd")
    assume(not (isinstance(cmd, str) and cmd in cases.NEVER))
    reply = _answered(daemon, cases.encode(request), then_ping=request.get("follow") is not True)
    assert cases.is_reply(reply), reply


@settings(max_examples=400, deadline=None)
@given(line=st.binary(min_size=1, max_size=300).map(lambda b: b.replace(b"\n", b"?")))
def test_any_bytes_get_an_error_reply_and_the_connection_goes_on(
    daemon: Daemon, line: bytes
) -> None:
    assume(line.strip())  # a blank line is no request, and gets no reply
    try:
        json.loads(line)
        assume(False)  # a valid JSON line is the other test's business
    except ValueError:
        pass
    reply = _answered(daemon, line + b"\n", then_ping=True)
    assert cases.is_error(reply), reply


# --- what the fuzz found -------------------------------------------------------------------


@contextlib.contextmanager
def killed_if_stuck(corral: Corral) -> Iterator[None]:
    """A daemon a bug leaves stuck is killed here, so the test fails on its own assertion
    and not in the fixture's ``corral down``."""
    try:
        yield
    except BaseException:
        if corral.process is not None and corral.process.poll() is None:
            os.killpg(corral.process.pid, signal.SIGKILL)
            corral.process.wait(timeout=10)
        raise


def _request(corral: Corral, timeout: float, cmd: str, **args: Any) -> dict[str, Any]:
    with Client(corral.socket, timeout=timeout) as client:
        return client.request(cmd, **args)


UNSPAWNABLE = [{"A": "x\u0000y"}, {"A=B": "x"}, {"": "x"}]


@pytest.mark.parametrize("env", UNSPAWNABLE, ids=["nul-value", "equals-in-name", "empty-name"])
def test_an_unspawnable_start_env_fails_that_start_and_down_still_returns(
    corral: Corral, env: dict[str, str]
) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\nautostart = false\nstart_grace = 0\n')
    corral.up()
    with killed_if_stuck(corral):
        reply = _request(corral, 20, "start", targets=[{"name": "web", "env": env}])
        assert reply["ok"] is False and reply["error"]["code"] == 1, reply
        assert "internal error" not in reply["error"]["message"], reply
        assert corral.one("web")["state"] in ("failed", "waiting")
        assert _request(corral, 20, "down")["ok"] is True


def test_an_unspawnable_start_env_through_the_spawner_thread_leaves_the_daemon_answering(
    corral: Corral,
) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\nautostart = false\nstart_grace = 0\n')
    corral.up(env={"CORRAL_SPAWNER_FDS": "3"})  # every spawn through the thread
    with killed_if_stuck(corral):
        with contextlib.suppress(NoReply):
            _request(corral, 5, "start", targets=[{"name": "web", "env": {"A": "\u0000"}}])
        assert _request(corral, 5, "ping")["ok"] is True
        corral.ok("start", "web")  # and it still spawns
        wait_until(lambda: corral.one("web")["state"] == "running", 10, "web to run")


def test_an_unspawnable_start_env_costs_its_own_connection_nothing_else(corral: Corral) -> None:
    """Until the fix above: the handler's ValueError is an internal-error reply on that
    connection, never a dead daemon or a dead connection (control/server.py)."""
    corral.write('[service.web]\nexec = ["sleep", "60"]\nautostart = false\nstart_grace = 0\n')
    corral.up()
    with killed_if_stuck(corral), Client(corral.socket, timeout=20) as client:
        reply = client.request("start", targets=[{"name": "web", "env": {"A": "\u0000"}}])
        assert reply["ok"] is False and reply["error"]["code"] in (1, 2), reply
        assert client.request("ping")["ok"] is True
        assert _request(corral, 5, "status")["ok"] is True
        if corral.process is not None:  # it may be stuck in 'spawned': don't wait on down
            os.killpg(corral.process.pid, signal.SIGKILL)
            corral.process.wait(timeout=10)
