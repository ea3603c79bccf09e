"""process-compose.yaml import: depends_on conditions as requirements, readiness probes as
ready, replicas as instances, and what has no place in corral listed at its line."""

from __future__ import annotations

from corral.convert.model import supported
from corral.convert.process_compose import import_process_compose
from tests.convert.helpers import definitions, unmapped

COMPOSE = """\
version: "0.5"
environment:
  - "STAGE=dev"
processes:
  migrate:
    command: "./migrate.sh"
  db:
    command: "postgres -D data"
    readiness_probe:
      exec:
        command: "pg_isready"
      period_seconds: 2
      failure_threshold: 5
    shutdown:
      signal: 2
      timeout_seconds: 30
  web:
    command: "python -m http.server $PORT"
    working_dir: /srv
    environment:
      - "PORT=8000"
    depends_on:
      db:
        condition: process_healthy
      migrate:
        condition: process_completed_successfully
      cache:
        condition: process_started
    readiness_probe:
      http_get:
        host: 127.0.0.1
        port: 8000
        path: /health
    availability:
      restart: on_failure
      backoff_seconds: 2
      max_restarts: 3
  cache:
    command: "redis-server"
    ready_log_line: "Ready to accept connections"
    disabled: true
  worker:
    command: "worker"
    replicas: 2
    liveness_probe:
      exec:
        command: "true"
"""


def test_depends_on_conditions_map_to_requirements() -> None:
    loaded = definitions(import_process_compose("/p/process-compose.yaml", COMPOSE))
    web = loaded["web"]
    assert web.requires == ("db", "migrate")
    assert web.wants == ("cache",)
    assert loaded["migrate"].type == "oneshot"  # others wait for it to complete


def test_readiness_probes_and_log_lines_are_ready() -> None:
    loaded = definitions(import_process_compose("/p/process-compose.yaml", COMPOSE))
    assert loaded["web"].ready is not None
    assert loaded["web"].ready.target == "http://127.0.0.1:8000/health"
    db_ready = loaded["db"].ready
    assert db_ready is not None and db_ready.command is not None
    assert db_ready.command.script == "pg_isready" and db_ready.interval == 2
    cache_ready = loaded["cache"].ready
    assert cache_ready is not None and cache_ready.kind == "log"
    assert cache_ready.target == "Ready to accept connections"


def test_process_keys_map_to_theirs() -> None:
    loaded = definitions(import_process_compose("/p/process-compose.yaml", COMPOSE))
    web, db = loaded["web"], loaded["db"]
    assert web.main is not None and web.main.script == "python -m http.server $PORT"
    assert dict(web.env) == {"STAGE": "dev", "PORT": "8000"}
    assert web.cwd == "/srv" and web.restart.mode == "on-failure" and web.restart.delay == 2
    assert (db.stop_signal, db.stop_timeout) == (2, 30)
    assert not loaded["cache"].autostart


def test_replicas_are_instances() -> None:
    imported = import_process_compose("/p/process-compose.yaml", COMPOSE)
    worker = definitions(imported)["worker"]
    assert worker.instance == "${PC_REPLICA_NUM}" and worker.env["PC_REPLICA_NUM"] == "0"
    assert any("corral start worker:1" in line for line in unmapped(imported))


def line_of(text: str) -> int:
    return COMPOSE.splitlines().index(text) + 1


def test_what_has_no_place_is_listed_at_its_line() -> None:
    lines = unmapped(import_process_compose("/p/process-compose.yaml", COMPOSE))
    threshold, restarts = line_of("      failure_threshold: 5"), line_of("      max_restarts: 3")
    assert f"/p/process-compose.yaml:{threshold}: readiness_probe failure_threshold: not mapped " \
        "(corral's probe has an interval and an overall timeout only)" in lines  # fmt: skip
    assert f"/p/process-compose.yaml:{restarts}: availability max_restarts: not mapped (corral " \
        "has no key for this)" in lines  # fmt: skip


def test_a_liveness_probe_is_liveness_where_corral_has_it() -> None:
    imported = import_process_compose("/p/process-compose.yaml", COMPOSE)
    if supported("liveness"):
        assert definitions(imported)["worker"].liveness is not None
    else:
        assert any("liveness_probe: not mapped (corral does not implement liveness yet)" in line
                   for line in unmapped(imported))  # fmt: skip


def test_yaml_that_does_not_parse_is_an_error_at_its_line() -> None:
    imported = import_process_compose("/p/pc.yaml", "processes:\n  a: [\n")
    assert imported.problems and imported.problems[0].line is not None
