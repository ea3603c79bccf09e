"""Real daemons under type = "notify", unchanged: PostgreSQL (as the postgres user) and Redis
(``supervised systemd``). A dependent must find them accepting connections the moment it
starts. `.ci/run` installs Redis; PostgreSQL comes with the machine."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.system.conftest import Corral, free_port


def postgres_bin() -> Path | None:
    found = shutil.which("postgres")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return versions[-1].parent if versions else None


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A data directory owned by the postgres user (postgres refuses to run as root)."""
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        missing("the postgres user")
    base = Path(tempfile.mkdtemp(prefix="corral-pg-"))
    os.chmod(base, 0o755)
    data = base / "data"
    data.mkdir()
    os.chown(data, user.pw_uid, user.pw_gid)
    yield data
    shutil.rmtree(base, ignore_errors=True)


def test_postgres_notify_readiness_gates_its_dependent(pg_dir: Path, corral: Corral) -> None:
    bindir = postgres_bin()
    if bindir is None:
        missing("PostgreSQL")
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(bindir / "initdb"),
            "-D",
            str(pg_dir),
            "-A",
            "trust",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    corral.write(
        f"""
        [service.pg]
        exec = ["{bindir / "postgres"}", "-D", "{pg_dir}", "-p", "{port}", "-k", "{pg_dir}",
                "-c", "listen_addresses=127.0.0.1"]
        type = "notify"
        user = "postgres"
        cwd = "{pg_dir}"
        stop_signal = "INT"
        timeout_start = 60
        autostart = false

        [service.app]
        script = "pg_isready -q -h 127.0.0.1 -p {port} -U postgres; psql -h 127.0.0.1 -p {port} -U postgres -tAc 'select 41 + 1' > {corral.root / "answer"}"
        type = "oneshot"
        requires = ["pg"]
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "app", timeout=90)
    assert (corral.root / "answer").read_text().strip() == "42"
    row = corral.one("pg")
    assert row["state"] == "running" and row["ready"]
    assert row["status_text"] is None  # PostgreSQL sends READY=1 with no STATUS=
    corral.ok("stop", "pg", timeout=60)
    assert corral.one("app")["state"] == "waiting"  # stopped first, as a dependent


def test_redis_supervised_systemd_gates_its_dependent(corral: Corral) -> None:
    server = shutil.which("redis-server")
    if server is None:
        missing("redis-server")
    port = free_port()
    corral.write(
        f"""
        [service.redis]
        exec = ["{server}", "--port", "{port}", "--bind", "127.0.0.1", "--supervised", "systemd",
                "--daemonize", "no", "--save", "", "--appendonly", "no", "--dir", "{corral.root}"]
        type = "notify"
        timeout_start = 30
        autostart = false

        [service.app]
        script = "redis-cli -p {port} ping > {corral.root / "pong"}"
        type = "oneshot"
        requires = ["redis"]
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "app", timeout=60)
    assert (corral.root / "pong").read_text().strip() == "PONG"
    row = corral.one("redis")
    assert row["ready"] is True
    # Redis sends "STATUS=Ready to accept connections" beside its READY=1.
    assert (row["status_text"] or "").startswith("Ready to accept connections"), row
