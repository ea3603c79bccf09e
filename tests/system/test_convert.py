"""Import and export for real: ``corral up -c Procfile`` (and a supervisord .conf, a
process-compose.yaml, a unit file) runs the services under a real daemon; ``corral import``
prints TOML that ``config check`` accepts; ``corral export`` writes the target's files."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import missing
from tests.system.conftest import Corral, env_of, wait_until

#: ``import`` and ``export`` through the real CLI once ``cli/main.py`` lists them; until then
#: through the same command functions and argument adders, behind the same error reporting.
_RUNNER = """
import argparse, sys
from corral.cli.convert import cmd_export, cmd_import, export_args, import_args
from corral.errors import reported
parser = argparse.ArgumentParser(prog="corral")
sub = parser.add_subparsers(dest="command", required=True)
for name, func, add in (("import", cmd_import, import_args), ("export", cmd_export, export_args)):
    p = sub.add_parser(name)
    p.set_defaults(func=func)
    add(p)
args = parser.parse_args()
sys.exit(reported(lambda: args.func(args)))
"""


def convert(corral: Corral, *args: str) -> subprocess.CompletedProcess[str]:
    from corral.cli.main import COMMANDS

    if args[0] in COMMANDS:
        return corral.run(*args)
    return subprocess.run([sys.executable, "-c", _RUNNER, *args], cwd=corral.root,
                          capture_output=True, text=True, timeout=60, env=corral.env())  # fmt: skip


def test_up_runs_a_procfile_with_its_dotenv_and_ports(corral: Corral) -> None:
    corral.write("web: echo \"$PORT $GREETING\" > web.out; exec sleep 600\n"
                 "worker: echo \"$PORT\" > worker.out; exec sleep 600\n", "Procfile")  # fmt: skip
    corral.write("GREETING=hello\n", ".env")
    corral.up("-c", "Procfile")
    corral.wait_state("web", "running")
    corral.wait_state("worker", "running")
    web, worker = corral.root / "web.out", corral.root / "worker.out"
    wait_until(lambda: web.exists() and worker.exists(), 10, "both commands to write")
    assert wait_until(lambda: web.read_text().strip(), 10, "web's line") == "5000 hello"
    assert wait_until(lambda: worker.read_text().strip(), 10, "worker's line") == "5100"


def test_up_runs_a_supervisord_conf(corral: Corral) -> None:
    corral.write("[supervisord]\nenvironment=STAGE=test\n\n[program:sleeper]\n"
                 "command=sleep 600\nenvironment=WHO=\"me, myself\"\nstopsignal=INT\n",
                 "supervisord.conf")  # fmt: skip
    corral.up("-c", "supervisord.conf")
    row = corral.wait_state("sleeper", "running")
    env = env_of(row["pid"])
    assert (env["STAGE"], env["WHO"]) == ("test", "me, myself")
    assert "[supervisord]" not in corral.log()  # only what it cannot map is said


def test_up_runs_a_process_compose_file_in_dependency_order(corral: Corral) -> None:
    corral.write(
        """\
        processes:
          setup:
            command: "echo done > setup.out"
          app:
            command: "test -f setup.out && exec sleep 600"
            depends_on:
              setup:
                condition: process_completed_successfully
            readiness_probe:
              exec:
                command: "test -f setup.out"
        """,
        "process-compose.yaml",
    )
    corral.up("-c", "process-compose.yaml")
    corral.wait_state("app", "running", 15)
    assert corral.one("setup")["state"] == "running" and corral.one("setup")["pid"] is None


def test_up_runs_a_template_unit_per_instance(corral: Corral) -> None:
    corral.write("[Unit]\nDescription=Sleeper %i\n\n[Service]\nEnvironment=SECONDS=%i\n"
                 "ExecStart=/bin/sleep ${SECONDS}\n", "sleeper@.service")  # fmt: skip
    corral.up("-c", "sleeper@.service")
    corral.ok("start", "sleeper:321")
    row = corral.wait_state("sleeper", "running")
    with open(f"/proc/{row['pid']}/cmdline", "rb") as handle:
        assert handle.read().split(b"\0")[:2] == [b"/bin/sleep", b"321"]


def test_a_bad_value_in_a_foreign_file_is_reported_at_its_own_line(corral: Corral) -> None:
    conf = corral.write("; my programs\n\n[program:x]\ncommand=sleep 600\nautorestart=true\n"
                        "stopsignal=BOGUS\n", "super.conf")  # fmt: skip
    result = corral.run("config", "check", "-c", str(conf))
    assert result.returncode == 1
    assert f"{conf}:6: service.x.stop_signal: expected a signal name" in result.stderr


def test_import_prints_toml_that_config_check_accepts_and_lists_the_rest(corral: Corral) -> None:
    corral.write("web: exec sleep 600\nnot a process line\n", "Procfile")
    result = convert(corral, "import", "Procfile")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        'corral: Procfile:2: not a process line: not mapped (not a "NAME: COMMAND" line)\n'
    )
    corral.write(result.stdout, "imported.toml")
    assert corral.ok("config", "check", "-c", "imported.toml").startswith("ok: 1 service(s)")


def test_import_of_debians_redis_unit_passes_config_check(corral: Corral) -> None:
    unit = "/lib/systemd/system/redis-server.service"
    if not os.path.exists(unit):
        missing("Debian's redis-server.service")
    result = convert(corral, "import", unit)
    assert result.returncode == 0, result.stderr
    assert f"corral: {unit}:19: LimitNOFILE: not mapped" in result.stderr
    corral.write(result.stdout, "redis.toml")
    assert corral.ok("config", "check", "-c", "redis.toml").startswith("ok: 1 service(s)")


def test_import_of_a_file_it_does_not_know_exits_1(corral: Corral) -> None:
    corral.write("hello\n", "notes.txt")
    result = convert(corral, "import", "notes.txt")
    assert result.returncode == 1 and "not a format corral imports" in result.stderr


def test_export_writes_each_targets_files_and_lists_what_it_cannot_carry(
    corral: Corral,
) -> None:
    corral.write('[service.web]\nexec = ["/bin/sleep", "600"]\nactions = { hi = "echo hi" }\n')
    for target, pattern in (("systemd", "web.service"), ("kubernetes", "test-export-*.yaml"),
                            ("compose", "compose.yaml")):  # fmt: skip
        result = convert(corral, "export", target, "out", "--image", "debian:12")
        assert result.returncode == 0, result.stderr
        assert list((corral.root / "out").glob(pattern))
        assert "corral.toml:3: service.web.actions: not mapped (" in result.stderr
    assert "ExecStart=/bin/sleep 600" in (corral.root / "out/web.service").read_text()
