"""The security part at small size, and what it found (reliability/security.py)."""

from __future__ import annotations

import os

import pytest

from reliability import security
from reliability.security_checks import python_for_others
from tests.conftest import missing
from tests.system.conftest import Corral, env_of


@pytest.mark.timeout(300)
def test_the_security_checks_pass() -> None:
    if os.getuid() != 0:
        missing("root (to connect as another uid and run user= services)")
    try:
        python_for_others()
    except RuntimeError:
        missing("a python3 in /usr/bin that another user may run (Debian's python3)")
    report = security.run(security.SMALL)
    print(report.text())
    assert report.ok, report.text()


def test_corrals_own_settings_do_not_reach_its_services(corral: Corral) -> None:
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up(env={"CORRAL_WATCH": "0", "CORRAL_SPAWNER_FDS": "5000"})
    pid = corral.wait_state("a", "running")["pid"]
    marks = {k: v for k, v in env_of(pid).items() if k.startswith("CORRAL_")}
    assert marks == {"CORRAL_JOB": "a", "CORRAL_INSTANCE": "", "CORRAL_SOCKET": corral.socket}
