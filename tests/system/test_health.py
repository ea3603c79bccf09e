"""``corral up --health ADDR``: real daemons, real HTTP (urllib), real metrics text."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import missing
from tests.system.conftest import CORRAL, Corral, free_port, wait_until

NAMES = ("prometheus_client", "corral.daemon.health", "corral.daemon.metrics")


def get(port: int, path: str, accept: str | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of one GET; an error status is an answer too."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if accept is not None:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text, by (name, labels)."""
    return _by_key(text_string_to_metric_families(text))


def _by_key(families: Iterator[Metric]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in families
        for s in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.fixture
def port() -> int:
    return free_port()


def _up_with_health(corral: Corral, port: int, *extra: str) -> None:
    corral.up("--health", f"127.0.0.1:{port}", *extra)
    wait_until(lambda: f"127.0.0.1:{port}" in corral.log(), 10, "the health endpoints")


def test_healthz_answers_200_while_the_daemon_runs(corral: Corral, port: int) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    _up_with_health(corral, port)
    assert get(port, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")


def test_a_bare_port_serves_every_address(corral: Corral, port: int) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    corral.up("--health", f":{port}")
    wait_until(lambda: f":{port}/" in corral.log(), 10, "the health endpoints")
    assert get(port, "/healthz")[0] == 200  # reached on 127.0.0.1


def test_readyz_is_503_naming_a_service_that_is_starting_then_200_once_it_is_ready(
    corral: Corral, port: int
) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "60"]

        [service.slow]
        exec = ["sleep", "60"]
        ready = { exec = "test -e go", interval = 0.05, timeout = 60 }
        """
    )
    _up_with_health(corral, port)
    corral.wait_state("web", "running")
    status, _, body = get(port, "/readyz")
    state = corral.one("slow")["state"]
    assert state in ("starting", "pre-start", "spawned", "post-start")
    assert status == 503
    assert body.splitlines() == ["not ready:", f"slow: {state}"]  # web, ready, is not named
    (corral.root / "go").touch()
    corral.wait_state("slow", "running")
    assert get(port, "/readyz")[::2] == (200, "ready\n")


def test_metrics_count_a_crash_and_its_respawn(corral: Corral, port: int) -> None:
    corral.write(
        """
        [service.flaky]
        # Crashes once, then stays up.
        script = "if test -e crashed; then exec sleep 60; fi; touch crashed; sleep 0.2; exit 3"
        restart = "on-failure"
        restart_delay = 0

        [service.steady]
        exec = ["sleep", "60"]
        """
    )
    _up_with_health(corral, port)
    wait_until(
        lambda: (r := corral.one("flaky"))["restarts"] == 1 and r["state"] == "running",
        10,
        "flaky to crash once and run again",
    )
    status, content_type, text = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    found = samples(text)
    flaky = {"service": "flaky", "instance": ""}
    assert found[key("corral_service_restarts_total", **flaky)] == 1
    assert found[key("corral_service_ready", **flaky)] == 1
    assert found[key("corral_service_state", **flaky, state="running")] == 1
    assert found[key("corral_service_state", **flaky, state="failed")] == 0
    # Two starts of flaky (the first and the respawn), one of steady.
    assert found[key("corral_service_start_seconds_count", service="flaky")] == 2
    assert found[key("corral_service_start_seconds_count", service="steady")] == 1
    assert found[key("corral_service_restarts_total", service="steady", instance="")] == 0
    assert 0 < found[key("corral_uptime_seconds")] < 120


def test_every_instance_has_one_series_per_state_with_1_for_its_own(
    corral: Corral, port: int
) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n\n[service.idle]\nautostart = false\n')
    _up_with_health(corral, port)
    corral.wait_state("web", "running")
    found = samples(get(port, "/metrics")[2])
    for name, current in (("web", "running"), ("idle", "waiting")):
        states = {
            dict(labels)["state"]: value
            for (metric, labels), value in found.items()
            if metric == "corral_service_state" and dict(labels)["service"] == name
        }
        assert len(states) == 11, states
        assert {s for s, v in states.items() if v == 1} == {current}


def test_metrics_come_as_openmetrics_when_the_scraper_asks(corral: Corral, port: int) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    _up_with_health(corral, port)
    corral.wait_state("web", "running")
    status, content_type, text = get(
        port, "/metrics", accept="application/openmetrics-text; version=1.0.0"
    )
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    found = _by_key(openmetrics(text))  # the strict parser: refuses a malformed text
    assert found[key("corral_service_ready", service="web", instance="")] == 1
    assert found[key("corral_service_start_seconds_count", service="web")] == 1


def test_unknown_paths_are_404_and_other_methods_405(corral: Corral, port: int) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    _up_with_health(corral, port)
    assert get(port, "/nope")[0] == 404
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    assert refused.value.headers["Allow"] == "GET, HEAD"


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_oversized_request_head_is_refused_and_the_daemon_answers_on(
    corral: Corral, port: int
) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    _up_with_health(corral, port)
    head = b"GET /healthz HTTP/1.1\r\n" + b"X-Filler: " + b"x" * 20_000 + b"\r\n\r\n"
    assert _raw(port, head).startswith(b"HTTP/1.1 431 ")
    many = b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 2000 + b"\r\n"
    assert _raw(port, many).startswith(b"HTTP/1.1 431 ")
    assert get(port, "/healthz")[0] == 200


def test_silent_clients_stall_neither_the_endpoints_nor_the_control_socket(
    corral: Corral, port: int
) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    _up_with_health(corral, port)
    silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    try:
        silent[0].sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
        began = time.monotonic()
        assert get(port, "/healthz")[0] == 200
        assert corral.one("web")["state"] == "running"
        assert time.monotonic() - began < 5
    finally:
        for sock in silent:
            sock.close()


def test_readyz_is_503_while_corral_stops_everything(corral: Corral, port: int) -> None:
    corral.write(
        """
        [service.slowstop]
        script = "trap 'sleep 2; exit 0' TERM; echo trap-set; while :; do sleep 0.1; done"
        """
    )
    _up_with_health(corral, port)
    wait_until(lambda: "trap-set" in corral.ok("logs", "slowstop"), 10, "slowstop's trap")
    assert get(port, "/readyz")[0] == 200
    assert corral.process is not None
    os.kill(corral.process.pid, signal.SIGTERM)
    wait_until(lambda: get(port, "/readyz")[0] == 503, 5, "readyz to turn 503")
    assert get(port, "/readyz")[2] == "not ready: corral is stopping every service\n"
    assert get(port, "/healthz")[0] == 200  # the daemon still runs
    assert corral.process.wait(timeout=20) == 0


def test_a_detached_up_serves_health_too(corral: Corral, port: int) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    started = corral.run("up", "-d", "--health", f"127.0.0.1:{port}")
    assert started.returncode == 0, started.stderr
    try:
        assert get(port, "/healthz")[0] == 200
    finally:
        corral.run("down")
    wait_until(lambda: not _answers(port), 10, "the detached daemon to exit")


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_the_full_cli_takes_health_too(corral: Corral, port: int) -> None:
    """``--conf`` (argparse's abbreviation) sends ``up`` through the full parser."""
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    _up_with_health(corral, port, "--conf", "corral.toml")
    assert get(port, "/healthz")[0] == 200


# -- errors at start -------------------------------------------------------------------------


def _up_exits(corral: Corral, *argv: str, command: list[str] = CORRAL) -> tuple[int, str]:
    """Run ``COMMAND up ARGV`` to its end: (exit code, output)."""
    result = subprocess.run(
        [*command, "up", *argv],
        cwd=corral.root, capture_output=True, text=True, timeout=30, env=corral.env(),
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


TOUCHER = '[service.toucher]\nscript = "touch started; exec sleep 60"\n'


def test_health_without_prometheus_client_is_an_error_at_start(corral: Corral, port: int) -> None:
    corral.write(TOUCHER)
    # corral's own entry, with the library made unimportable (as if not installed).
    hidden = [
        sys.executable,
        "-c",
        "import sys; sys.modules['prometheus_client'] = None; "
        "from corral.cli.quick import main; sys.argv[0] = 'corral'; main()",
    ]
    code, said = _up_exits(corral, "--health", f"127.0.0.1:{port}", command=hidden)
    assert code == 1, said
    assert "--health needs prometheus-client: pip install 'corral[health]'" in said
    assert not (corral.root / "started").exists()


def test_a_port_in_use_is_an_error_at_start(corral: Corral) -> None:
    corral.write(TOUCHER)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, said = _up_exits(corral, "--health", f"127.0.0.1:{port}")
    assert code == 1, said
    assert f"cannot serve --health on 127.0.0.1:{port}: Address already in use" in said
    assert not (corral.root / "started").exists()


@pytest.mark.parametrize("address", ["9000", "localhost", "127.0.0.1:99999", "::1:80", "[]:80"])
def test_a_malformed_address_is_a_usage_error(corral: Corral, address: str) -> None:
    corral.write(TOUCHER)
    code, said = _up_exits(corral, "--health", address)
    assert code == 2, said
    assert "expected HOST:PORT, [HOST]:PORT or :PORT" in said


# -- cost ------------------------------------------------------------------------------------


def _imported(output: str) -> set[str]:
    """The modules ``-X importtime`` reported in a process's stderr."""
    return {
        line.rsplit("|", 1)[1].strip() for line in output.splitlines() if "import time:" in line
    }


def test_up_without_health_imports_none_of_it(corral: Corral) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    corral.up(env={"PYTHONPROFILEIMPORTTIME": "1"})
    corral.wait_state("web", "running")
    modules = _imported(corral.log())
    assert "corral.daemon.loop" in modules  # the daemon's imports were reported
    assert not {m for m in modules if m.startswith(NAMES)}


def test_status_does_not_import_prometheus_client(corral: Corral, port: int) -> None:
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    _up_with_health(corral, port)
    for argv in (["status"], ["status", "--js"]):  # the quick path, and argparse's
        result = corral.run(*argv, env={"PYTHONPROFILEIMPORTTIME": "1"})
        assert result.returncode == 0, result.stderr
        modules = _imported(result.stderr)
        assert "corral.cli.quick" in modules
        assert not {m for m in modules if m.startswith(NAMES)}, argv


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process, in nanoseconds (the scheduler's own count)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def test_an_idle_daemon_with_health_uses_no_cpu(corral: Corral, port: int) -> None:
    corral.write(
        '[service.web]\nexec = ["sleep", "600"]\n\n[service.db]\nexec = ["sleep", "600"]\n'
    )
    _up_with_health(corral, port)
    corral.wait_state("web", "running")
    corral.wait_state("db", "running")
    assert get(port, "/metrics")[0] == 200  # every part of it has run once
    assert get(port, "/readyz")[0] == 200
    assert corral.process is not None
    pid = corral.process.pid
    record = corral.root / ".corral" / "processes"  # corral's own record, written once
    wait_until(record.exists, 10, "corral's record of its processes")
    time.sleep(0.5)  # the connections' last callbacks
    before = _cpu_ns(pid)
    time.sleep(3)  # the window measured: nothing happens in it, by design
    assert _cpu_ns(pid) - before == 0


# -- as PID 1 --------------------------------------------------------------------------------


def test_corral_as_pid_1_answers_healthz(corral: Corral, port: int) -> None:
    if os.getuid() != 0:
        missing("root (to make a PID namespace)")
    if shutil.which("unshare") is None:
        missing("unshare")
    corral.write('[service.web]\nexec = ["sleep", "60"]\n')
    with open(corral.output, "ab") as out:
        corral.process = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "corral", "up",
             "--socket", corral.socket, "--health", f"127.0.0.1:{port}"],
            cwd=corral.root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    wait_until(corral.ping, 15, "corral as PID 1")
    assert get(port, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
    corral.wait_state("web", "running")
    assert get(port, "/readyz")[0] == 200
