"""The services of the chaos soak: every kind a real install mixes, all ``restart = "always"``.

Every process runs ``sleep MARK`` (MARK a number unique to the run) or a script around it, so
what is left of the run after ``corral down`` is found by its command line, and nothing else
on the machine is ever mistaken for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from msgspec import Struct

#: A notify service: READY=1 on NOTIFY_SOCKET, then exec ``sleep MARK`` (same pid, little memory).
NOTIFY_SCRIPT = """\
import os, socket, sys
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
    sock.sendto(b"READY=1", address)
os.execvp("sleep", ["sleep", sys.argv[1]])
"""

#: Every service respawns at once, however often it is killed: a lost service is corral's fault.
RESPAWN = 'restart = "always"\nrestart_delay = 0.05\nrestart_limit = [1000000, 1]\n'
CHAIN_LENGTH = 8


class Plan(Struct):
    """What the soak runs and what it expects: the instances that must always run (steady),
    the services the clients start and stop (churn), and the event-started jobs."""

    mark: str
    config: str
    steady: list[tuple[str, str]]
    churn: list[str]
    events: list[str]
    instance_keys: list[str]
    churn_keys: list[str]
    chain: list[str]
    orphans: list[str]


def _share(total: int, part: int, least: int = 2) -> int:
    return max(least, total // part)


def make_plan(total: int, mark: str, root: Path) -> Plan:
    """About ``total`` instances: a requires chain, notify services, shells that leave
    double-forked orphans, pre-start hooks, instances of one service, start_on/stop_on jobs,
    services the clients churn, and plain ones for the rest."""
    (root / "notify.py").write_text(NOTIFY_SCRIPT)
    sleep = f'exec = ["sleep", "{mark}"]\n'
    blocks: list[str] = []
    chain = [f"chain-{i}" for i in range(CHAIN_LENGTH)]
    for index, name in enumerate(chain):
        needs = f'requires = ["chain-{index - 1}"]\n' if index else ""
        blocks.append(f"[service.{name}]\n{sleep}{needs}")
    notify = [f"notify-{i}" for i in range(_share(total, 40))]
    python = f'exec = ["{sys.executable}", "-I", "-S", "{root / "notify.py"}", "{mark}"]\n'
    blocks += [f'[service.{name}]\ntype = "notify"\n{python}' for name in notify]
    orphans = [f"orphan-{i}" for i in range(_share(total, 10))]
    script = f'script = "(sleep {mark} &); exec sleep {mark}"\n'
    blocks += [f"[service.{name}]\n{script}" for name in orphans]
    hooked = [f"hooked-{i}" for i in range(_share(total, 20))]
    blocks += [f'[service.{name}]\n{sleep}pre_start = "true"\n' for name in hooked]
    keys = [f"s{i}" for i in range(_share(total, 20))]
    blocks.append(f'[service.inst]\n{sleep}instance = "${{K}}"\n')
    events = [f"ev-{i}" for i in range(_share(total, 20))]
    trigger = 'start_on = "chaos-on"\nstop_on = "chaos-off"\n'
    blocks += [f"[service.{name}]\n{sleep}{trigger}" for name in events]
    churn = [f"churn-{i}" for i in range(_share(total, 10, 3))]
    blocks += [f"[service.{name}]\n{sleep}" for name in churn]
    used = len(chain) + len(notify) + len(orphans) + len(hooked) + len(keys) + len(events)
    plain = [f"plain-{i}" for i in range(max(0, total - used - len(churn)))]
    blocks += [f"[service.{name}]\n{sleep}" for name in plain]
    config = "\n".join(block + RESPAWN for block in blocks)
    always = chain + notify + orphans + hooked + plain
    return Plan(
        mark=mark,
        config=config,
        steady=[(name, "") for name in always] + [("inst", key) for key in keys],
        churn=churn,
        events=events,
        instance_keys=keys,
        churn_keys=[f"c{i}" for i in range(5)],
        chain=chain,
        orphans=orphans,
    )


def instance_targets(keys: list[str]) -> list[dict[str, object]]:
    return [{"name": "inst", "env": {"K": key}} for key in keys]
