"""Settings for every test run."""

import os

# Every daemon the tests start (and every Supervisor made in-process) checks each status it
# hands out from its kept list against a fresh one, and refuses it if they differ: a change
# to what a status row shows, made without bumping the supervisor's epoch, fails the test
# that saw it instead of showing a stale row to a user.
os.environ["CORRAL_CHECK_STATUS"] = "1"
