"""Config fuzz: mutated configurations through the real ``corral config check``, and the
rejected ones through ``config_reload`` of a running daemon.

    python -m reliability.config_fuzz [--cases N] [--reloads N] [--seed S] [--all]

Passes when ``config check`` of every case ends within its bound with 0 (taken) or 1
(refused), never with a traceback; a refusal names the file; and every configuration
that ``config check`` refuses is refused by a running daemon's reload too, which then
changes nothing: every instance as it was (pid, state, goal, since), and the good
configuration put back reloads with nothing to change.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from msgspec import Struct

from reliability import config_cases
from reliability.config_cases import Case
from reliability.harness import CORRAL, Daemon, Report, run_dir, wait_until


class Sizes(Struct, frozen=True):
    cases: int
    reloads: int
    seed: int = 21
    check_timeout: float = 20.0  # seconds one ``config check`` may take


#: In CI, room for a busy machine: a 1 MB ``exec`` string alone takes 10 s to split here.
SMALL = Sizes(cases=84, reloads=20, check_timeout=60.0)
FULL = Sizes(cases=3000, reloads=400)
MEMORY_LIMIT = 4 << 30  # a check that reads without end fails here, not in the machine's OOM


class Checked(Struct):
    """What ``config check`` did with one case."""

    index: int
    code: int | None  # None: it did not end in time
    seconds: float
    problem: str | None  # what is wrong with the outcome, if anything


def check(case: Case, index: int, directory: Path, timeout: float) -> Checked:
    case.write(directory)
    began = time.monotonic()
    try:
        done = subprocess.run(
            [*CORRAL, "config", "check", "-c", str(directory)],
            capture_output=True,
            timeout=timeout,
            preexec_fn=_limit_memory,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Checked(index, None, timeout, f"hung ({timeout:g} s): {case.kind}: {case.what}")
    seconds = time.monotonic() - began
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    problem = None
    if "Traceback" in output:
        problem = f"traceback: {case.kind}: {case.what}\n{output[:300]} ... {output[-300:]}"
    elif done.returncode not in (0, 1):
        problem = f"exit {done.returncode}: {case.kind}: {case.what}\n{output[-500:]}"
    elif done.returncode == 1 and str(directory) not in output.splitlines()[0]:
        problem = f"no file named: {case.kind}: {case.what}\n{output[:500]}"
    return Checked(index, done.returncode, seconds, problem)


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_checks(sizes: Sizes, root: Path, report: Report) -> list[tuple[Case, Checked]]:
    """Every case through ``config check``, two at a time."""
    chosen = [
        (index, case) for index, case in enumerate(config_cases.cases(sizes.cases, sizes.seed))
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda item: check(
                    item[1], item[0], root / "cases" / str(item[0]), sizes.check_timeout
                ),
                chosen,
            )
        )
    pairs = [(case, result) for (_, case), result in zip(chosen, results, strict=True)]
    kinds: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for case, result in pairs:
        kinds[case.kind] += 1
        refused[case.kind] += result.code == 1
    report.figure(
        "cases (refused / all)",
        ", ".join(f"{k} {refused[k]}/{n}" for k, n in sorted(kinds.items())),
    )
    slowest = max(pairs, key=lambda pair: pair[1].seconds)
    report.figure(
        "slowest config check", f"{slowest[1].seconds:.2f} s ({slowest[0].kind}: "
        f"{slowest[0].what[:60]})"
    )  # fmt: skip
    problems = [r.problem for _, r in pairs if r.problem]
    hung = [p for p in problems if p.startswith("hung")]
    tracebacks = [p for p in problems if p.startswith("traceback")]
    unnamed = [p for p in problems if p.startswith("no file named")]
    report.check("config check never hangs", not hung, hung[:3])
    report.check("config check never tracebacks", not tracebacks, tracebacks[:2])
    report.check("config check exits 0 or 1", not [p for p in problems if p.startswith("exit")],
                 [p for p in problems if p.startswith("exit")][:3])  # fmt: skip
    report.check("a refusal names the file", not unnamed, unnamed[:3])
    return pairs


def _snapshot(daemon: Daemon) -> list[tuple[Any, ...]]:
    keys = ("name", "instance", "goal", "state", "pid", "since", "stale", "restarts")
    return sorted(tuple(row[k] for k in keys) for row in daemon.status())


def _put(case: Case, directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    case.write(directory)


def run_reloads(sizes: Sizes, root: Path, refused: list[Case], report: Report) -> None:
    """Each refused case as a running daemon's config: refused too, and nothing changes."""
    base = config_cases.base_case()
    sources = root / "daemon" / "corral.d"
    _put(base, sources)
    with Daemon(root / "daemon", None, env={"CORRAL_WATCH": "0"}) as daemon:
        daemon.start()
        wait_until(lambda: _settled(daemon), 30, "the base configuration to come up")
        before = _snapshot(daemon)
        accepted, changed, residue = [], [], []
        tried = refused[: sizes.reloads]
        for case in tried:
            _put(case, sources)
            reply = daemon.request("config_reload", timeout=60)
            if reply["ok"]:
                accepted.append(f"{case.kind}: {case.what}")
            after = _snapshot(daemon)
            if after != before:
                moved = sorted(set(after) ^ set(before))[:4]
                changed.append(f"{case.kind}: {case.what}: {moved}")
                before = after  # the next case is judged from here
            _put(base, sources)
            back = daemon.request("config_reload", timeout=60)
            if not back["ok"] or any(
                back["result"].get(k) for k in ("added", "changed", "removed")
            ):
                residue.append(f"{case.kind}: {case.what} -> {back}")
            if not daemon.alive():
                break
        report.figure("refused configs reloaded into a running daemon", len(tried))
        report.check("the daemon refuses what config check refuses", not accepted, accepted[:3])
        report.check("a refused reload changes no instance", not changed, changed[:3])
        report.check("a refused reload changes no definition", not residue, residue[:3])
        report.check("the daemon is alive", daemon.alive(), daemon.log()[-2000:])
        report.check("corral down afterwards", daemon.stop())


def _settled(daemon: Daemon) -> bool:
    rows = {row["name"]: row for row in daemon.status()}
    return all(rows[name]["state"] == "running" for name in ("db", "web"))


def run(sizes: Sizes, parent: Path | None = None) -> Report:
    report = Report("config fuzz", f"{sizes.cases} cases (seed {sizes.seed}), "
                    f"{sizes.reloads} refused ones reloaded")  # fmt: skip
    began = time.monotonic()
    with run_dir(parent, "config") as root:
        pairs = run_checks(sizes, root, report)
        refused = [case for case, result in pairs if result.code == 1]
        run_reloads(sizes, root, refused, report)
    report.figure("seconds", f"{time.monotonic() - began:.0f}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=FULL.cases)
    parser.add_argument("--reloads", type=int, default=FULL.reloads)
    parser.add_argument("--seed", type=int, default=FULL.seed)
    args = parser.parse_args(argv)
    report = run(Sizes(args.cases, args.reloads, args.seed))
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
