"""Procfile import: honcho's semantics (a shell per command, PORT by process type in file
order, the .env beside it), and every line that is not a process type reported."""

from __future__ import annotations

import pytest

from corral.convert.procfile import import_procfile, parse_formation
from corral.convert.toml_text import aligned
from corral.core.registry import build
from tests.convert.helpers import definitions, loaded_in_place, unmapped

PROCFILE = """\
# the app
web: gunicorn app:app --bind 0.0.0.0:$PORT

worker: celery -A app worker
clock: python clock.py
"""


def test_each_process_type_runs_its_command_under_a_shell() -> None:
    loaded = definitions(import_procfile("/app/Procfile", PROCFILE))
    assert loaded["web"].main is not None
    assert loaded["web"].main.script == "gunicorn app:app --bind 0.0.0.0:$PORT"
    assert loaded["web"].shell_script
    assert list(loaded) == ["web", "worker", "clock"]


def test_port_is_5000_plus_100_per_process_type_in_file_order() -> None:
    loaded = definitions(import_procfile("/app/Procfile", PROCFILE))
    assert [loaded[name].env["PORT"] for name in ("web", "worker", "clock")] == [
        "5000", "5100", "5200",
    ]  # fmt: skip


def test_a_port_in_dotenv_is_the_base_and_dotenv_is_read_at_each_start() -> None:
    imported = import_procfile("/app/Procfile", PROCFILE, ("/app/.env", "PORT=8000\nA=1\n"))
    loaded = definitions(imported)
    assert loaded["worker"].env["PORT"] == "8100"
    assert loaded["web"].env_file == ("/imported/.env",)  # beside the TOML, as printed


def test_a_dotenv_line_that_cannot_be_read_is_an_error_at_its_line() -> None:
    imported = import_procfile("/app/Procfile", PROCFILE, ("/app/.env", "A=1\nnot a line\n"))
    assert [str(p) for p in imported.problems] == [
        "/app/.env:2: expected NAME=VALUE, got 'not a line'"
    ]


def test_a_line_that_is_not_a_process_type_is_listed_not_dropped() -> None:
    imported = import_procfile("/app/Procfile", "web: run\nthis is prose\n")
    assert unmapped(imported) == [
        '/app/Procfile:2: this is prose: not mapped (not a "NAME: COMMAND" line)'
    ]


def test_formation_zero_keeps_the_type_but_up_does_not_start_it() -> None:
    loaded = definitions(import_procfile("/app/Procfile", PROCFILE, None, {"clock": 0}))
    assert not loaded["clock"].autostart
    assert loaded["web"].autostart


def test_formation_above_one_makes_one_instance_per_port_and_says_how_to_start_them() -> None:
    imported = import_procfile("/app/Procfile", PROCFILE, None, parse_formation("web=3"))
    loaded = definitions(imported)
    assert loaded["web"].instance == "${PORT}"
    assert loaded["web"].autostart
    assert "corral start web PORT=5001 PORT=5002" in unmapped(imported)[0]


def test_a_formation_naming_no_process_type_is_reported() -> None:
    imported = import_procfile("/app/Procfile", PROCFILE, None, {"cron": 1})
    assert unmapped(imported) == [
        "/app/Procfile: formation cron: not mapped (no such process type in the Procfile)"
    ]


@pytest.mark.parametrize("bad", ["web", "web=x", "=2"])
def test_a_formation_that_does_not_read_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="formation"):
        parse_formation(bad)


def test_loaded_in_place_each_command_stands_at_its_procfile_line() -> None:
    """``corral up -c Procfile``: the registry finds every key at the Procfile's line."""
    imported = import_procfile("/app/Procfile", PROCFILE)
    registry = build([("/app/Procfile", aligned(imported.drafts, "/app/Procfile"))])
    assert registry.merged("worker")["script"][1:] == ("/app/Procfile", 4)
    assert registry.merged("clock")["script"][1:] == ("/app/Procfile", 5)
    assert set(loaded_in_place(imported, "/app/Procfile")) == {"web", "worker", "clock"}
