"""The config fuzz at small size, and the bugs it found (reliability/config_fuzz.py)."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import msgspec
import pytest

from reliability import config_fuzz
from reliability.harness import Client
from tests.reliability.test_protocol import killed_if_stuck
from tests.system.conftest import CORRAL, Corral


@pytest.mark.timeout(300)
def test_the_config_fuzz_at_small_size_passes() -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    sizes = msgspec.structs.replace(config_fuzz.SMALL, seed=seed)
    report = config_fuzz.run(sizes)
    print(report.text())
    assert report.ok, report.text()


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    """``corral config check -c PATH``, bounded in time and memory."""
    return subprocess.run(
        [*CORRAL, "config", "check", "-c", str(path)],
        capture_output=True, text=True, timeout=8, preexec_fn=_limited,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _refused_naming(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    assert name in result.stderr, result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_fifo_or_dev_zero_among_the_sources_is_refused_not_read(
    tmp_path: Path, kind: str
) -> None:
    (tmp_path / "good.toml").write_text('[service.a]\nexec = ["sleep", "1"]\n')
    odd = tmp_path / "odd.toml"
    if kind == "fifo":
        os.mkfifo(odd)
    else:
        odd.symlink_to("/dev/zero")
    try:
        result = _check(tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("config check hung")
    _refused_naming(result, str(odd))


def test_a_reload_with_a_fifo_among_the_sources_leaves_the_daemon_answering(
    corral: Corral,
) -> None:
    sources = corral.root / "corral.d"
    sources.mkdir()
    (sources / "a.toml").write_text('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up(env={"CORRAL_WATCH": "0"})
    os.mkfifo(sources / "odd.toml")
    with killed_if_stuck(corral), Client(corral.socket, timeout=5) as client:
        reply = client.request("config_reload")
        assert reply["ok"] is False and "odd.toml" in reply["error"]["message"], reply
        assert client.request("ping")["ok"] is True


@pytest.mark.parametrize("opening", ["[", "{A = "])
def test_toml_nested_past_tomlis_limit_is_an_error_naming_the_file(
    tmp_path: Path, opening: str
) -> None:
    closing = "]" if opening == "[" else "}"
    deep = opening * 1000 + ("1" if opening != "[" else "") + closing * 1000
    path = tmp_path / "deep.toml"
    path.write_text(f'[service.a]\nexec = ["sleep", "1"]\nenv = {{A = {deep}}}\n')
    _refused_naming(_check(path), str(path))


@pytest.mark.parametrize("key", ["start_on", "while"])
def test_an_expression_nested_thousands_deep_is_an_error_naming_the_file(
    tmp_path: Path, key: str
) -> None:
    path = tmp_path / "corral.toml"
    expression = "(" * 5000 + "db" + ")" * 5000
    path.write_text(f'[service.db]\nexec = ["sleep", "1"]\n{key} = "{expression}"\n')
    result = _check(path)
    _refused_naming(result, f"{path}:")
    assert f"service.db.{key}" in result.stderr


@pytest.mark.parametrize("key", ["stop_timeout", "restart_delay", "timeout_start"])
def test_a_duration_too_large_for_a_float_is_an_error_naming_the_file(
    tmp_path: Path, key: str
) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(f'[service.db]\nexec = ["sleep", "1"]\n{key} = {"9" * 400}\n')
    result = _check(path)
    _refused_naming(result, f"{path}:3: service.db.{key}")


@pytest.mark.parametrize(
    "body",
    [
        'exec = ["sleep", "1"]\nenv = { A = "x\\u0000y" }',
        'exec = ["sleep", "1\\u0000"]',
        'exec = ["sleep", "1"]\npre_start = "a\\u0000"',
    ],
    ids=["env", "exec", "hook"],
)
def test_a_nul_byte_in_what_a_process_gets_is_a_config_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "corral.toml"
    path.write_text(f"[service.a]\n{body}\n")
    result = _check(path)
    _refused_naming(result, f"{path}:")
    assert "service.a." in result.stderr
