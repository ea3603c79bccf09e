"""Exported files checked by the tools of their targets: systemd's own ``systemd-analyze
verify``, ``kubernetes-validate`` (Kubernetes' schemas, offline) and ``docker-compose config``
(the compose file format, offline); and what cannot be exported said at its line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.convert.export_common import Exported, Where, where_of
from corral.convert.export_compose import export_compose
from corral.convert.export_kubernetes import export_kubernetes
from corral.convert.export_systemd import export_systemd
from corral.core.registry import Registry, build
from tests.conftest import missing

CONFIG = """\
[service.db]
exec = ["/bin/sleep", "600"]
type = "notify"
stop_signal = "INT"
stop_timeout = 30
env = { PGDATA = "/var/lib/db 1", RATE = "100%" }
restart = "always"

[service.migrate]
script = "echo migrating $PGDATA"
type = "oneshot"
requires = ["db"]

[service.web]
exec = ["/bin/sh", "-c", "exec sleep $${SECONDS:-600}", "${PORT}"]
env = { PORT = "8000" }
requires = ["db", "migrate"]
restart = "always"
ready = { exec = ["/bin/true"], interval = "2s" }
post_start = "echo up"
pre_stop = ["/bin/kill", "-USR1", "$MAINPID"]
cwd = "/srv"
user = "www-data"
actions = { rotate = "kill -USR1 $MAINPID" }

[service.getty]
exec = ["/bin/sleep", "${TTY}"]
instance = "${TTY}"

[service.online]
start_on = "net-up"
"""


def loaded(tmp_path: Path, text: str = CONFIG) -> tuple[Registry, Where]:
    path = tmp_path / "corral.toml"
    path.write_text(text)
    registry = build([(str(path), text)])
    return registry, where_of(registry)


def written(exported: Exported, directory: Path) -> list[Path]:
    directory.mkdir(exist_ok=True)
    paths = []
    for name, text in exported.files.items():
        (directory / name).write_text(text)
        paths.append(directory / name)
    return paths


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        missing("systemd-analyze (Debian's systemd)")
    registry, where = loaded(tmp_path)
    paths = written(export_systemd(registry.definitions, where), tmp_path / "units")
    assert sorted(p.name for p in paths) == ["db.service", "getty@.service", "migrate.service",
                                             "web.service"]  # fmt: skip
    units = [str(p) for p in paths if "@" not in p.name] + [str(tmp_path / "units/getty@1.service")]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *units],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    ours = [line for line in result.stderr.splitlines() if str(tmp_path) in line
            or line.startswith(("db.", "web.", "migrate.", "getty@"))]  # fmt: skip
    assert result.returncode == 0 and ours == [], result.stderr


def test_systemd_export_reports_what_units_cannot_say_at_its_line(tmp_path: Path) -> None:
    registry, where = loaded(tmp_path)
    lines = [str(u) for u in export_systemd(registry.definitions, where).unmapped]
    config = tmp_path / "corral.toml"
    assert f"{config}:19: service.web.ready: not mapped (systemd has no readiness probes; " \
        "Type= is the readiness it knows)" in lines  # fmt: skip
    assert f"{config}:24: service.web.actions: not mapped (systemd has no actions)" in lines
    assert f"{config}:30: service.online.exec: not mapped (a state (no process) is no systemd " \
        "service)" in lines  # fmt: skip


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "kubernetes-validate"
    if not tool.exists():
        missing("kubernetes-validate (a dev dependency)")
    return subprocess.run([str(tool), "--strict", str(path)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_kubernetes_manifest_passes_kubernetes_validate(tmp_path: Path) -> None:
    registry, where = loaded(tmp_path)
    exported = export_kubernetes(registry.definitions, where, "My_Project", "example/app:1")
    [path] = written(exported, tmp_path / "k8s")
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    assert manifest["kind"] == "Deployment"  # db and web restart always
    spec = manifest["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["migrate"]
    web = spec["containers"][1]
    assert web["command"] == ["/bin/sh", "-c", "exec sleep ${SECONDS:-600}", "$(PORT)"]
    assert web["readinessProbe"] == {"exec": {"command": ["/bin/true"]}, "periodSeconds": 2}
    assert spec["terminationGracePeriodSeconds"] == 30


def test_kubernetes_pod_when_the_restart_policies_do_not_all_say_always(tmp_path: Path) -> None:
    registry, where = loaded(tmp_path, CONFIG.replace('restart = "always"', 'restart = "no"'))
    [path] = written(export_kubernetes(registry.definitions, where, "p", "img"), tmp_path / "k")
    assert kubernetes_validate(path).returncode == 0
    manifest = yaml.safe_load(path.read_text())
    assert (manifest["kind"], manifest["spec"]["restartPolicy"]) == ("Pod", "Never")


def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        missing("docker-compose (Debian's docker-compose, for its offline `config` check)")
    registry, where = loaded(tmp_path)
    [path] = written(export_compose(registry.definitions, where, "example/app:1"), tmp_path / "c")
    result = subprocess.run(["docker-compose", "-f", str(path), "config", "-q"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(path.read_text())["services"]
    assert set(services) == {"db", "migrate", "web"}
    assert services["web"]["depends_on"] == {
        "db": {"condition": "service_started"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert services["migrate"]["entrypoint"] == ["/bin/sh", "-e", "-c",
                                                 "echo migrating $$PGDATA"]  # fmt: skip
    assert services["web"]["healthcheck"]["test"] == ["CMD", "/bin/true"]


@pytest.mark.parametrize("broken", ["services:\n  a:\n    image: x\n    entrypoint: 3\n"])
def test_docker_compose_config_refuses_a_broken_file(tmp_path: Path, broken: str) -> None:
    """The check above can fail: the same tool refuses a file that is not valid."""
    if shutil.which("docker-compose") is None:
        missing("docker-compose")
    (tmp_path / "compose.yaml").write_text(broken)
    result = subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "config",
                             "-q"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
