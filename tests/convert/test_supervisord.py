"""supervisord.conf import: programs as services, numprocs as instances, groups as states
that want their programs, and every key or section without a place in corral listed."""

from __future__ import annotations

import pytest

from corral.convert.supervisord import import_supervisord, include_patterns
from corral.convert.toml_text import aligned
from corral.core.registry import build
from corral.errors import ConfigError
from tests.convert.helpers import definitions, unmapped

CONF = """\
[supervisord]
logfile=/var/log/supervisord.log
environment=STAGE="prod",LANG=C

[program:web]
command=/usr/bin/python3 -m http.server %(ENV_PORT)s --directory "/srv/my site"
directory=/srv
user=www-data
autorestart=unexpected
exitcodes=0,2
startsecs=3
startretries=4
stopsignal=INT
stopwaitsecs=20
environment=A="1,2",B=x  ; a comment
stdout_logfile=/var/log/web.log
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=3
priority=10

[program:worker]
command=worker --id %(process_num)d
process_name=%(program_name)s_%(process_num)02d
numprocs=3
numprocs_start=1
autostart=false
stopasgroup=false

[group:site]
programs=web,worker
"""


def test_a_program_maps_to_its_keys() -> None:
    web = definitions(import_supervisord("/etc/supervisord.conf", CONF))["web"]
    assert web.main is not None
    assert web.main.argv == ("/usr/bin/python3", "-m", "http.server", "${PORT}",
                             "--directory", "/srv/my site")  # fmt: skip
    assert (web.cwd, web.user, web.start_grace, web.stop_timeout) == ("/srv", "www-data", 3, 20)
    assert web.restart.mode == "on-failure"
    assert web.restart.normal_statuses == {0, 2}
    assert web.restart.burst == 4
    assert web.stop_signal == 2
    assert web.log.file == "/var/log/web.log" and web.log.max_size == 50 * 1024**2
    assert web.log.keep == 3


def test_environment_of_supervisord_and_program_are_merged_with_quoted_commas() -> None:
    web = definitions(import_supervisord("/etc/supervisord.conf", CONF))["web"]
    assert dict(web.env) == {"STAGE": "prod", "LANG": "C", "A": "1,2", "B": "x"}


def test_numprocs_is_one_service_with_an_instance_per_process_number() -> None:
    imported = import_supervisord("/etc/supervisord.conf", CONF)
    worker = definitions(imported)["worker"]
    assert worker.instance == "${PROCESS_NUM}"
    assert worker.main is not None and worker.main.argv[-1] == "${PROCESS_NUM}"
    assert worker.env["PROCESS_NUM"] == "1"
    assert not worker.autostart
    assert any("corral start worker:2 worker:3" in line for line in unmapped(imported))


def test_a_group_is_a_state_that_wants_its_programs_but_not_instantiated_ones() -> None:
    imported = import_supervisord("/etc/supervisord.conf", CONF)
    site = definitions(imported)["site"]
    assert site.main is None and site.wants == ("web",) and not site.autostart
    assert "/etc/supervisord.conf:30: programs worker: not mapped" in "\n".join(unmapped(imported))


def test_what_corral_has_no_place_for_is_listed_at_its_line() -> None:
    lines = unmapped(import_supervisord("/etc/supervisord.conf", CONF))
    assert "/etc/supervisord.conf:1: [supervisord]: not mapped (supervisord's own settings; " \
        "corral has its own socket and logs)" in lines  # fmt: skip
    assert "/etc/supervisord.conf:19: priority: not mapped (corral orders starts by requires " \
        "and after)" in lines  # fmt: skip
    assert "/etc/supervisord.conf:27: stopasgroup: not mapped (corral always signals the " \
        "whole process group)" in lines  # fmt: skip


def test_included_files_are_imported_with_their_own_file_and_line() -> None:
    main = "[supervisord]\n[include]\nfiles = conf.d/*.conf\n"
    assert include_patterns(main) == ["conf.d/*.conf"]
    extra = "[program:cron]\ncommand=cron -f\nbogus=1\n"
    imported = import_supervisord("/etc/s.conf", main, [("/etc/conf.d/cron.conf", extra)])
    assert "cron" in definitions(imported)
    assert "/etc/conf.d/cron.conf:3: bogus: not mapped (corral has no key for this)" in unmapped(
        imported
    )


def test_a_program_without_command_is_an_error() -> None:
    imported = import_supervisord("/etc/s.conf", "[program:x]\nuser=me\n")
    assert [str(p) for p in imported.problems] == ["/etc/s.conf:1: [program:x] has no command"]


def test_a_bad_value_loaded_in_place_is_reported_at_the_conf_line() -> None:
    """``corral up -c supervisord.conf``: corral's own check of a value names the .conf."""
    conf = "[program:x]\ncommand=sleep 1\nstopsignal=BOGUS\n"
    imported = import_supervisord("/etc/s.conf", conf)
    with pytest.raises(ConfigError) as caught:
        build([("/etc/s.conf", aligned(imported.drafts, "/etc/s.conf"))])
    assert str(caught.value).startswith("/etc/s.conf:3: service.x.stop_signal: expected a signal")
