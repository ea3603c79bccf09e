"""Making a new set of definitions current (a reload that loaded cleanly), Upstart's way.

A running instance keeps the definition it was started with, except where only policy keys
changed (restart policy, timeouts: nothing of it runs that they would alter); new services
appear, changed ones take effect at their next start, removed ones stay until they stop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from corral.core.definition import POLICY_FIELDS, Definition, changed_fields, keys_of
from corral.daemon.table import InstanceTable, at_rest

#: What changed, for ``corral config reload``: added, changed, applied (policy only), removed.
Summary = dict[str, list[Any]]


def apply_definitions(
    table: InstanceTable,
    definitions: Mapping[str, Definition],
    redefined: Callable[[str], None],
) -> Summary:
    """Make ``definitions`` current in ``table``; ``redefined(name)`` for each service whose
    definition changed. The caller starts the added services that autostart."""
    summary: Summary = {"added": [], "changed": [], "applied": [], "removed": []}
    table.changed()  # services, definitions and staleness below
    for name, new in definitions.items():
        job = table.jobs.get(name)
        if job is None:
            job = table.add_job(new)
            summary["added"].append(name)
        elif new != job.definition or job.removed:
            fields = changed_fields(job.definition, new)
            if new.log != job.definition.log and job.log is not None:
                job.log.reconfigure(new.log, table.log_dir())
            job.definition, job.removed = new, False
            kind = "applied" if fields <= POLICY_FIELDS else "changed"
            summary[kind].append({"name": name, "keys": keys_of(fields)})
            redefined(name)
        else:
            continue
        if new.instance is None and "" not in job.instances:
            table.new_instance(job, "")
        for rt in job.instances.values():
            if at_rest(rt) or changed_fields(rt.definition, new) <= POLICY_FIELDS:
                rt.definition = new  # nothing of it runs that the change would alter
            table.idle[rt] = None
    for name, job in table.jobs.items():
        if name not in definitions and not job.removed:
            job.removed = True
            summary["removed"].append(name)
            table.idle.update(dict.fromkeys(job.instances.values()))
    table.rebuild()
    return summary
