"""Settings for every test run, and what a test does where a real part is missing."""

import os
from typing import NoReturn

import pytest

# Every daemon the tests start (and every Supervisor made in-process) checks each status it
# hands out from its kept list against a fresh one, and refuses it if they differ: a change
# to what a status row shows, made without bumping the supervisor's epoch, fails the test
# that saw it instead of showing a stale row to a user.
os.environ["CORRAL_CHECK_STATUS"] = "1"


def missing(what: str) -> NoReturn:
    """A real part a test needs (a daemon, root, a cgroup hierarchy, a PID namespace) is not
    on this machine: the test is skipped, except where ``CORRAL_REQUIRE_REAL_DAEMONS=1``
    (set by .ci/run, which installs every part) makes it a failure."""
    if os.environ.get("CORRAL_REQUIRE_REAL_DAEMONS") == "1":
        pytest.fail(f"{what} is required here (CORRAL_REQUIRE_REAL_DAEMONS=1), and missing")
    pytest.skip(f"{what} is missing here")
