"""Where a configuration's paths and runtime directory are, and how overrides amend, with a
real daemon started from somewhere else than the config: relative paths read from the file
that wrote them, an override whatever the order of files, a project with only corral.d/."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.system.conftest import CORRAL, Corral, env_of, wait_until


def test_relative_paths_are_read_from_the_config_file_not_the_callers_cwd(
    corral: Corral,
) -> None:
    here = corral.root / "sub" / "dir"
    (here / "work").mkdir(parents=True)
    (corral.root / "work").mkdir()  # decoys where the caller is: not to be used
    (corral.root / "vars.env").write_text("FROM=caller\n")
    (here / "vars.env").write_text("FROM=config\n")
    (corral.root / "other").mkdir()
    (corral.root / "other" / "other.env").write_text("FROM=override\n")
    corral.write('env_file = "other.env"\n', "other/api.override.toml")
    config = corral.write(
        """
        [service.web]
        script = 'echo "web sees FROM=$FROM"; exec sleep 600'
        cwd = "work"
        env_file = "vars.env"
        log = "logs/web.log"

        [service.api]
        exec = ["sleep", "600"]
        env_file = "vars.env"
        """,
        "sub/dir/corral.toml",
    )
    assert Path(os.getcwd()) != here
    corral.up("-c", "sub/dir/corral.toml", "-c", "other", "--socket", corral.socket)
    assert config.exists()
    web = corral.wait_state("web", "running")
    assert os.readlink(f"/proc/{web['pid']}/cwd") == str(here / "work")
    assert env_of(web["pid"])["FROM"] == "config"
    log = here / "logs" / "web.log"
    wait_until(lambda: log.exists() and "web sees FROM=config" in log.read_text(),
               what="web's line in sub/dir/logs/web.log")  # fmt: skip
    assert not (corral.root / "logs").exists()
    api = corral.wait_state("api", "running")
    assert env_of(api["pid"])["FROM"] == "override"  # other/other.env, beside the override


def test_an_override_beside_its_definition_amends_it_and_its_removal_restores(
    corral: Corral,
) -> None:
    drop = corral.root / "conf.d"
    drop.mkdir()
    corral.write('[service.web]\nexec = ["sleep", "600"]\nenv = { V = "original" }\n',
                 "conf.d/web.toml")  # fmt: skip
    override = corral.write('env = { V = "amended" }\n', "conf.d/web.override.toml")
    assert sorted(os.listdir(drop)) == ["web.override.toml", "web.toml"]  # read in this order
    corral.up("-c", str(drop), "--socket", corral.socket, env={"CORRAL_WATCH": "0"})
    row = corral.wait_state("web", "running")
    assert env_of(row["pid"])["V"] == "amended"
    shown = corral.ok("config", "show", "web")
    assert 'env = { V = "amended" }' in shown and "web.override.toml:1" in shown, shown

    override.unlink()
    out = corral.ok("config", "reload")
    assert "changed: web (env)" in out, out
    shown = corral.ok("config", "show", "web")
    assert 'env = { V = "original" }' in shown and "web.override.toml" not in shown, shown
    assert corral.one("web")["stale"] is True
    corral.ok("restart", "web")
    assert env_of(corral.one("web")["pid"])["V"] == "original"


def test_a_project_with_only_corral_d_is_reached_from_its_directory(corral: Corral) -> None:
    (corral.root / "corral.d").mkdir()
    corral.write('[service.web]\nexec = ["sleep", "600"]\n', "corral.d/web.toml")
    env = dict(os.environ, CORRAL_SOCKET="")  # empty: found from the cwd, as by default
    corral.up(wait=False, env=env)

    def status_from_the_project() -> bool:
        assert corral.process is not None and corral.process.poll() is None, corral.log()
        result = subprocess.run([*CORRAL, "status"], cwd=corral.root, env=env,
                                capture_output=True, text=True, timeout=10)  # fmt: skip
        return result.returncode == 0

    wait_until(status_from_the_project, 15, "`corral status` from the project to exit 0")
    assert (corral.root / ".corral" / "control.sock").exists()
    assert not (corral.root / "corral.d" / ".corral").exists()


def test_a_file_still_being_written_is_reloaded_once_it_is_closed(corral: Corral) -> None:
    corral.write('[service.web]\nexec = ["sleep", "600"]\n')
    corral.up()
    corral.wait_state("web", "running")
    with open(corral.root / "corral.toml", "w") as config:
        config.write('[service.web]\nexec = ["sleep", "600"]\n[service.api]\nexec = [')
        config.flush()  # half a file on disk, still open: no reload of it (no IN_MODIFY)
        time.sleep(1.0)  # five debounce periods in which nothing may happen
        assert "reload" not in corral.log(), corral.log()
        config.write('"sleep", "600"]\n')
    wait_until(lambda: "reloaded after a change: added: api" in corral.log(), what="the reload")
    assert "refused" not in corral.log()
