"""Security: who may use corral's socket, where a hostile name can reach, and what corral
hands the processes it runs.

    python -m reliability.security [--attempts N]

Passes when the socket is 0600 and corral's own; a process of another uid is refused on
every connection (``SO_PEERCRED``), even with the socket and its directory opened to all;
a ``user=`` service runs as that user and cannot use the socket (it cannot reach it, and is
refused once it can); instance values and ``logs`` names made of ``..`` and ``/`` make
nothing outside corral's directories and read nothing there; and every process corral runs,
by every way it starts one (in place, from the spawner thread, through ``Popen`` for a
``cwd``, ``umask`` or ``user``, a shell, a notify or ready_fd service, with sockets, a hook,
an action), holds no fd but stdin, stdout, stderr and what its keys ask for, and no
``CORRAL_*`` variable but ``CORRAL_JOB``, ``CORRAL_INSTANCE``, ``CORRAL_SOCKET`` and
``CORRAL_CALL_CHAIN`` (DESIGN.md, "Every process corral runs").
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from msgspec import Struct

from reliability import security_checks as checks
from reliability.harness import Daemon, Report, run_dir


class Sizes(Struct, frozen=True):
    attempts: int  # connections from another uid


SMALL = Sizes(attempts=20)
FULL = Sizes(attempts=500)


def run(sizes: Sizes, parent: Path | None = None) -> Report:
    report = Report("security", f"{sizes.attempts} connections from another uid")
    if os.getuid() != 0:
        report.check("run as root (to be another uid, and to run user= services)", False)
        return report
    python = checks.python_for_others()
    with run_dir(parent, "security") as root:
        root.chmod(0o711)  # a user= service may run the reporter from here
        reporter = checks.copy_reporter(root)
        for label, env in (("in place", {}), ("spawner thread", {"CORRAL_SPAWNER_FDS": "3"})):
            home = root / label.replace(" ", "-")
            home.mkdir(mode=0o711)
            config = checks.reporting_config(python, str(reporter), str(home))
            with Daemon(home, config, env={"CORRAL_WATCH": "0", **env}) as daemon:
                daemon.start()
                if label == "in place":
                    checks.socket_mode(daemon, report)
                    checks.hostile_names(daemon, report)
                checks.what_processes_get(daemon, report, label)
                if label == "in place":
                    checks.user_service(daemon, report)
                    checks.other_uid(daemon, report, sizes.attempts)
                report.check(f"{label}: the daemon is alive", daemon.alive(), daemon.log()[-2000:])
                report.check(f"{label}: corral down afterwards", daemon.stop())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=FULL.attempts)
    args = parser.parse_args(argv)
    report = run(Sizes(args.attempts))
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
