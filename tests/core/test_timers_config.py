"""Timer keys in the configuration: what they parse to, what ``config check`` says of a bad
calendar (file, service, key, line) and of keys that make no sense together, and what the
timers bridge is told to watch."""

from __future__ import annotations

import pytest

from corral.core import bridge_jobs
from corral.core.calendar import parse_calendar
from corral.core.registry import load
from corral.errors import ConfigError


def problems(text: str) -> list[str]:
    try:
        load([("/srv/c.toml", text)])
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_timer_keys_parse_and_a_timer_job_does_not_start_with_up() -> None:
    defs = load([("c.toml", """
[service.backup]
type = "oneshot"
exec = ["backup"]
on_calendar = "Mon..Fri 02:30"
persistent = true
random_delay = "10m"

[service.tick]
script = "date"
every = "5m"

[service.both]
exec = ["x"]
every = 60
autostart = true
""")])  # fmt: skip
    backup, tick = defs["backup"], defs["tick"]
    assert backup.on_calendar == parse_calendar("Mon..Fri 02:30") and backup.every is None
    assert backup.persistent and backup.random_delay == 600.0 and backup.timer
    assert tick.every == 300.0 and not tick.persistent and tick.random_delay == 0.0
    assert not backup.autostart and not tick.autostart and defs["both"].autostart


def test_a_bad_calendar_names_the_file_service_key_and_line() -> None:
    found = problems("""
[service.backup]
exec = ["backup"]
on_calendar = "Mon 25:00"
""")  # fmt: skip
    assert len(found) == 1
    assert found[0].startswith("/srv/c.toml:4: service.backup.on_calendar:"), found
    assert 'cannot read the calendar "Mon 25:00"' in found[0] and "hour: 25" in found[0]


def test_a_bad_cron_line_is_refused_too() -> None:
    (found,) = problems('[service.b]\nexec = ["b"]\non_calendar = "0 3 * * funday"\n')
    assert "service.b.on_calendar:" in found and "cron day of week" in found


@pytest.mark.parametrize(
    ("keys", "key", "words"),
    [
        ('exec = ["b"]\npersistent = true', "persistent", "needs every or on_calendar"),
        ('exec = ["b"]\nrandom_delay = 5', "random_delay", "needs every or on_calendar"),
        ('exec = ["b"]\nevery = 5\non_calendar = "daily"', "on_calendar", "not both"),
        ('exec = ["b"]\nevery = 5\npersistent = true', "persistent", "is for on_calendar"),
        ('on_calendar = "daily"', "on_calendar", "a state (no exec or script)"),
        ('exec = ["b"]\nevery = 5\ninstance = "${X}"', "instance", "one instance"),
        (
            'exec = ["b"]\nevery = 5\naccept = true\nsockets = [{ listen = "127.0.0.1:9" }]',
            "accept",
            "one instance",
        ),
        ('exec = ["b"]\nevery = 5\nwhile = "net-online"', "while", "started by its timer"),
        ('exec = ["b"]\nevery = 0', "every", "above 0"),
    ],
)
def test_timer_keys_that_make_no_sense_together_are_refused(
    keys: str, key: str, words: str
) -> None:
    found = problems(f"[service.job]\n{keys}\n")
    assert any(f"service.job.{key}:" in p and words in p for p in found), found


def test_a_timer_with_start_on_and_stop_on_is_fine() -> None:
    text = '[service.job]\nexec = ["b"]\nevery = 5\nstart_on = "deploy"\nstop_on = "halt"\n'
    assert problems(text) == []


def test_the_timers_bridge_is_needed_and_told_each_timer() -> None:
    defs = load([("c.toml", """
[service.backup]
exec = ["backup"]
on_calendar = "daily"
persistent = true

[service.tick]
exec = ["tick"]
every = "2s"
random_delay = 1

[service.web]
exec = ["web"]
""")])  # fmt: skip
    assert "timers" in [spec.name for spec in bridge_jobs.needed(defs)]
    assert bridge_jobs.watched(defs, "timers") == {
        "timers": {
            "backup": {"every": None, "on_calendar": "daily", "persistent": True,
                       "random_delay": 0.0},
            "tick": {"every": 2.0, "on_calendar": None, "persistent": False, "random_delay": 1.0},
        }
    }  # fmt: skip
    plain = {"web": defs["web"]}
    assert bridge_jobs.needed(plain) == [] and bridge_jobs.watched(plain, "timers") == {
        "timers": {}
    }
