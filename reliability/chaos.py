"""Chaos soak: hundreds of services, a random service process SIGKILLed every 0.1 s, three
clients starting, stopping, restarting and emitting all the while.

    python -m reliability.chaos [--services N] [--seconds S] [--kill-every S]

Passes when no service is lost (every goal-start instance is running again within the
bound, none ever ends ``failed``), no zombie of the daemon's lives 2 s, no process of an old
incarnation outlives it, the daemon's fd count and PSS come back to where they were, every
client request is answered, ``status`` answers in under 50 ms at the 99th percentile, and
``corral down`` leaves nothing of the run behind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from msgspec import Struct

from reliability.chaos_plan import Plan, instance_targets, make_plan
from reliability.chaos_watch import Rows, Watch
from reliability.harness import (
    Client,
    Daemon,
    NoReply,
    Report,
    Timeout,
    corral_marks,
    latency_text,
    run_dir,
    wait_until,
)

PROBER = Path(__file__).resolve().parent / "prober.py"


class Sizes(Struct, frozen=True):
    services: int
    seconds: float
    kill_every: float = 0.1
    recover_within: float = 30.0  # every goal-start instance running again after the chaos
    status_p99_ms: float = 50.0


SMALL = Sizes(services=60, seconds=20)
FULL = Sizes(services=1000, seconds=300)


class Clients:
    """Three clients on connections of their own, and the killer; each counts its outcomes."""

    def __init__(self, daemon: Daemon, plan: Plan, watch: Watch, every: float) -> None:
        self._daemon = daemon
        self._plan = plan
        self._rows = watch.rows
        self._watch = watch
        self._every = every
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.no_reply: list[str] = []
        self.kills = 0

    def threads(self, stop: threading.Event) -> list[threading.Thread]:
        jobs = (self._churner, self._emitter, self._instancer, self._killer)
        return [threading.Thread(target=job, args=(stop,), daemon=True) for job in jobs]

    def _ask(self, client: Client, label: str, cmd: str, **args: Any) -> None:
        try:
            reply = client.request(cmd, **args)
        except NoReply as exc:
            self.no_reply.append(f"{label}: {exc}")
            raise
        self.outcomes[f"{label} {'ok' if reply['ok'] else 'error'}"] += 1
        if not reply["ok"]:
            first = reply["error"]["message"].splitlines()[0]
            self.errors[f"{label}: {first.split(': ', 1)[-1][:80]}"] += 1

    def _loop(self, stop: threading.Event, pause: tuple[float, float], step: Any) -> None:
        rng = random.Random()
        try:
            with self._daemon.client(timeout=120) as client:
                while not stop.wait(rng.uniform(*pause)):
                    step(client, rng)
        except NoReply:
            return

    def _churner(self, stop: threading.Event) -> None:
        """Starts, stops and restarts the churn services, and restarts steady ones."""

        def step(client: Client, rng: random.Random) -> None:
            verb = rng.choice(("start", "stop", "restart", "restart-steady"))
            if verb == "restart-steady":
                name, key = rng.choice(self._plan.steady)
                target: dict[str, Any] = {"name": name, "instance": key or None}
                self._ask(client, "restart", "restart", targets=[target])
            else:
                target = {"name": rng.choice(self._plan.churn)}
                self._ask(client, verb, verb, targets=[target])

        self._loop(stop, (0.05, 0.3), step)

    def _emitter(self, stop: threading.Event) -> None:
        """Emits the events that start and stop the ``start_on``/``stop_on`` jobs."""

        def step(client: Client, rng: random.Random) -> None:
            event = rng.choice(("chaos-on", "chaos-off"))
            self._ask(client, "emit", "emit", event=event, env={})

        self._loop(stop, (0.2, 1.0), step)

    def _instancer(self, stop: threading.Event) -> None:
        """Starts and stops extra instances, and restarts the middle of the requires chain."""

        def step(client: Client, rng: random.Random) -> None:
            verb = rng.choice(("start", "stop", "restart-chain"))
            if verb == "restart-chain":
                target = {"name": rng.choice(self._plan.chain)}
                self._ask(client, "restart", "restart", targets=[target])
            else:
                targets = instance_targets([rng.choice(self._plan.churn_keys)])
                self._ask(client, f"instance {verb}", verb, targets=targets)

        self._loop(stop, (0.1, 0.5), step)

    def _killer(self, stop: threading.Event) -> None:
        """SIGKILLs a random process of a service: mostly main processes, else any other
        (an orphan, a hook), checked to be this daemon's by its CORRAL_SOCKET first."""
        rng = random.Random()
        while not stop.wait(self._every):
            mains = self._rows.main_pids()
            if not mains:
                continue
            pid = rng.choice(mains)
            if rng.random() < 0.3:
                main_set = set(mains)
                others = [p for p in self._watch.strays.service_pids if p not in main_set]
                pid = rng.choice(others or mains)
            if corral_marks(pid).get("CORRAL_SOCKET") != self._daemon.socket:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                self.kills += 1
            except ProcessLookupError:
                pass


def start_prober(daemon: Daemon, interval: float = 0.05) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PROBER), daemon.socket, str(interval)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def stop_prober(prober: subprocess.Popen[str]) -> dict[str, list[Any]]:
    out, _ = prober.communicate(timeout=60)
    result: dict[str, list[Any]] = json.loads(out)
    return result


def bring_up(daemon: Daemon, plan: Plan, timeout: float) -> None:
    """The goals the soak starts from and ends with: every steady instance and churn
    service started, the event jobs on, the extra instances stopped; then wait for all."""
    targets = [{"name": name} for name in plan.churn] + instance_targets(plan.instance_keys)
    with daemon.client(timeout=timeout) as client:
        client.request("start", targets=targets, wait=False)
        client.request("emit", event="chaos-on", env={}, wait=False)
        client.request("stop", targets=instance_targets(plan.churn_keys), wait=False)
        reply = client.request("wait", timeout=timeout)
    if not reply["ok"]:
        raise Timeout(f"not everything came up: {reply['error']['message'][:2000]}")


def not_running(daemon: Daemon, plan: Plan) -> list[str]:
    """Instances that should run and do not (or have goal stop: nobody stops a steady one)."""
    rows = {(r["name"], r["instance"]): r for r in daemon.status()}
    expected = [*plan.steady, *((name, "") for name in plan.churn + plan.events)]
    return [
        f"{name}:{key} {row['goal']}/{row['state']}" if row else f"{name}:{key} missing"
        for name, key in expected
        if not (row := rows.get((name, key))) or row["state"] != "running" or not row["ready"]
    ]


def leftovers(mark: str) -> list[int]:
    """Processes whose command line carries the run's mark."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if mark.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def run(sizes: Sizes, parent: Path | None = None) -> Report:
    report = Report("chaos soak", f"{sizes.services} services, {sizes.seconds:g} s")
    mark = str(random.randrange(10**8, 10**9))
    with run_dir(parent, "chaos") as root:
        plan = make_plan(sizes.services, mark, root)
        with Daemon(root, plan.config, env={"CORRAL_WATCH": "0"}) as daemon:
            daemon.start(timeout=max(60, sizes.services * 0.1))
            _soak(daemon, plan, sizes, report)
            clean = daemon.stop(timeout=120)
            report.check("corral down returns and the daemon exits 0", clean)
        try:
            wait_until(lambda: not leftovers(mark), 10, "the run's processes to end")
        except Timeout:
            pass
        left = leftovers(mark)
        report.check("nothing of the run is left after corral down", not left, left[:10])
    return report


def _soak(daemon: Daemon, plan: Plan, sizes: Sizes, report: Report) -> None:
    bring_up(daemon, plan, timeout=max(60, sizes.services * 0.1))
    rows = Rows(daemon.socket)
    watch = Watch(daemon.pid, daemon.socket, rows)
    time.sleep(1.0)
    settled_fds, settled_pss = watch.resources.sample()
    clients = Clients(daemon, plan, watch, sizes.kill_every)
    watching, chaos = threading.Event(), threading.Event()
    observers = [threading.Thread(target=o.run, args=(watching,), daemon=True) for o in (rows,)]
    observers.append(threading.Thread(target=watch.run, args=(chaos,), daemon=True))
    workers = clients.threads(chaos)
    prober = start_prober(daemon)
    for thread in observers + workers:
        thread.start()
    began = time.monotonic()
    chaos.wait(sizes.seconds)
    chaos.set()
    for thread in workers + observers[1:]:
        thread.join(timeout=180)
    elapsed = time.monotonic() - began
    recovery = _recover(daemon, plan, sizes, report)
    watch.settle_scan()
    watching.set()
    observers[0].join(timeout=30)
    probe = stop_prober(prober)
    _figures(report, sizes, clients, rows, watch, probe, elapsed, recovery)
    end_fds, end_pss = watch.resources.sample()
    _verdicts(report, sizes, clients, rows, watch, probe, recovery)
    report.figure("daemon fds (settled, before → after)", f"{settled_fds} → {end_fds}")
    report.figure(
        "daemon PSS MB (settled, before → after)",
        f"{settled_pss / 1024:.1f} → {end_pss / 1024:.1f}",
    )
    fd_slack = max(8, settled_fds // 50)
    report.check("fd count flat", end_fds <= settled_fds + fd_slack, f"slack {fd_slack}")
    pss_slack = settled_pss * 0.15 + 4096
    report.check("PSS flat", end_pss <= settled_pss + pss_slack, f"slack {pss_slack / 1024:.1f} MB")
    report.check("the daemon is alive", daemon.alive(), daemon.log()[-2000:])


def _recover(daemon: Daemon, plan: Plan, sizes: Sizes, report: Report) -> float:
    """After the chaos: the goals set again as they began; seconds until all run."""
    began = time.monotonic()
    try:
        bring_up(daemon, plan, sizes.recover_within)
    except (Timeout, NoReply) as exc:
        report.check(f"every instance running within {sizes.recover_within:g} s", False, exc)
    missing = not_running(daemon, plan)
    report.check("0 services lost", not missing, missing[:20])
    return time.monotonic() - began


def _figures(
    report: Report,
    sizes: Sizes,
    clients: Clients,
    rows: Rows,
    watch: Watch,
    probe: dict[str, list[Any]],
    elapsed: float,
    recovery: float,
) -> None:
    report.figure("chaos seconds", f"{elapsed:.0f}")
    report.figure("instances", len(rows.rows))
    report.figure("SIGKILLs", clients.kills)
    report.figure(
        "client requests", ", ".join(f"{k} {v}" for k, v in sorted(clients.outcomes.items()))
    )
    for message, count in clients.errors.most_common(4):
        report.figure("  error reply", f"{count} x {message}")
    outage, key = rows.longest_outage
    report.figure("longest outage of a goal-start instance", f"{outage:.2f} s ({key})")
    report.figure("recovery after the chaos", f"{recovery:.2f} s")
    report.figure("zombies seen (all ages)", watch.zombies.seen)
    report.figure("status latency", latency_text(probe["latencies"]))
    fds, pss = watch.resources.fds, watch.resources.pss
    if fds:
        report.figure("daemon fds during (min/max)", f"{min(fds)} / {max(fds)}")
        report.figure(
            "daemon PSS MB during (min/max)", f"{min(pss) / 1024:.1f} / {max(pss) / 1024:.1f}"
        )


def _verdicts(
    report: Report,
    sizes: Sizes,
    clients: Clients,
    rows: Rows,
    watch: Watch,
    probe: dict[str, list[Any]],
    recovery: float,
) -> None:
    from reliability.harness import percentile

    report.check(
        "no instance ever failed", not rows.failed_seen, dict(list(rows.failed_seen.items())[:10])
    )
    report.check(
        "0 zombies older than 2 s", not watch.zombies.too_old, sorted(watch.zombies.too_old)[:10]
    )
    report.check(
        "0 strays from old incarnations",
        not watch.strays.found,
        list(watch.strays.found.values())[:10],
    )
    report.check("every client request answered", not clients.no_reply + rows.errors + probe["errors"],
                 (clients.no_reply + rows.errors + probe["errors"])[:5])  # fmt: skip
    p99 = percentile([s * 1000 for s in probe["latencies"]], 0.99)
    report.check(
        f"status p99 under {sizes.status_p99_ms:g} ms", p99 < sizes.status_p99_ms, f"{p99:.1f} ms"
    )
    report.check(
        "the killer killed", clients.kills > sizes.seconds / sizes.kill_every / 4, clients.kills
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=FULL.services)
    parser.add_argument("--seconds", type=float, default=FULL.seconds)
    parser.add_argument("--kill-every", type=float, default=FULL.kill_every)
    args = parser.parse_args(argv)
    sizes = Sizes(args.services, args.seconds, args.kill_every)
    report = run(sizes)
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
