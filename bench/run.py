"""corral against its peers, side by side in one run on one machine.

    python bench/run.py                 # the full run (after bench/install.sh); writes RESULTS.md
    python bench/run.py --smoke         # N=20, corral and the floor only, well under a minute

Scenarios, for each manager and N (every service a ``sleep`` with automatic restart):
cold start (launch to all N running, from the kernel's exec timestamps), memory of the
manager's own processes (PSS), idle CPU and context switches, one full status through the
manager's CLI (and corral's raw protocol round trip), respawn after SIGKILL, stop all; and for
corral alone a dependency graph whose readiness is compared with its critical path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from managers import ALL, CORRAL, SLEEP, Manager
from procwatch import ProcWatch, count_marked

RUN_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
METRICS = [
    ("cold start s", "cold"),
    ("PSS MB", "pss"),
    ("idle CPU ms", "idle_cpu"),
    ("idle ctx switches", "idle_ctx"),
    ("status ms (CLI)", "status"),
    ("status ms (protocol)", "protocol"),
    ("respawn ms", "respawn"),
    ("stop all s", "stop"),
]


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_and_switches(pids: list[int]) -> tuple[float, int]:
    """CPU seconds and context switches of every thread of ``pids``. The CPU time is the
    scheduler's own count, in nanoseconds (``/proc/PID/task/TID/schedstat``), not utime and
    stime, which count whole clock ticks (10 ms at USER_HZ 100): an idle manager's few
    wakeups, well under a tick, read as 0 there."""
    nanoseconds, switches = 0, 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as f:
                    nanoseconds += int(f.read().split()[0])
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    for line in f:
                        if "ctxt_switches" in line:
                            switches += int(line.split()[1])
            except OSError:
                pass
    return nanoseconds / 1e9, switches


def protocol_round_trip(path: str, count: int = 20) -> float:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    reader = sock.makefile("rb")
    times = []
    for _ in range(count):
        began = time.perf_counter()
        sock.sendall(b'{"cmd": "status"}\n')
        reader.readline()
        times.append(time.perf_counter() - began)
    sock.close()
    return statistics.median(times)


def one_round(kind: type[Manager], n: int, idle: float, quiet: bool) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"corral-bench-{kind.name}-", dir=RUN_DIR))
    mark = str(random.randrange(10**8, 10**9))  # seconds of sleep: the run's unique argv
    watch = ProcWatch(mark)
    manager = kind(workdir, n, mark)
    result: dict[str, float] = {}
    try:
        manager.configure()
        began = time.monotonic_ns()
        manager.launch()
        if not watch.wait_count(n, timeout=max(60, n * 0.05)):
            raise RuntimeError(f"{kind.name}: only {len(watch.alive)} of {n} started")
        result["cold"] = (watch.latest_exec_ns() - began) / 1e9
        time.sleep(0.5)
        services = set(watch.alive)
        own = manager.own_pids(services)
        result["pss"] = pss_mb(own)
        cpu0, ctx0 = cpu_and_switches(own)
        time.sleep(idle)
        cpu1, ctx1 = cpu_and_switches(own)
        result["idle_cpu"] = (cpu1 - cpu0) * 1000 * (10 / idle)  # per 10 s
        result["idle_ctx"] = (ctx1 - ctx0) * (10 / idle)
        result["status"] = statistics.median(manager.status() for _ in range(5)) * 1000
        if kind.name == "corral":
            result["protocol"] = protocol_round_trip(str(workdir / "control.sock")) * 1000
        respawns = []
        for victim in random.sample(sorted(services), min(5, len(services))):
            time.sleep(1.1)  # each kill long after the last start (s6 and supervisord throttle)
            before = len(watch.execs)
            killed = time.monotonic_ns()
            os.kill(victim, signal.SIGKILL)
            if not watch.wait(lambda b=before: len(watch.execs) > b, timeout=30):
                raise RuntimeError(f"{kind.name}: no respawn within 30 s")
            respawns.append((watch.execs[before][1] - killed) / 1e6)
            watch.wait_count(n, timeout=30)
        result["respawn"] = statistics.median(respawns)
        began = time.monotonic_ns()
        manager.stop_all()
        if not watch.wait_count(0, timeout=max(60, n * 0.05)):
            raise RuntimeError(f"{kind.name}: {len(watch.alive)} still running after stop")
        result["stop"] = (max(watch.last_exit_ns, began) - began) / 1e9
    finally:
        manager.cleanup()
        watch.close()
        for pid in count_marked(mark):  # what a failed run left: ours by their unique argv
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(workdir, ignore_errors=True)
    if not quiet:
        print(f"  {kind.name:12} N={n:<5} " + " ".join(f"{k}={v:.4g}" for k, v in result.items()))
    return result


def graph_spec(n: int, depth: int, seed: int) -> dict[str, tuple[float, list[str]]]:
    """n services in ``depth`` levels, each needing two of the level below, each ready after
    a random 0-50 ms: name -> (delay, requirements), in level order."""
    rng = random.Random(seed)
    per_level = n // depth
    spec: dict[str, tuple[float, list[str]]] = {}
    for level in range(depth):
        for i in range(per_level):
            needs = rng.sample([f"l{level - 1}s{j}" for j in range(per_level)], 2) if level else []
            spec[f"l{level}s{i}"] = (rng.uniform(0, 0.05), needs)
    return spec


def critical_path(spec: dict[str, tuple[float, list[str]]]) -> float:
    finish: dict[str, float] = {}
    for name, (delay, needs) in spec.items():
        finish[name] = delay + max((finish[r] for r in needs), default=0.0)
    return max(finish.values())


def service_script(delay: float, mark: str) -> str:
    """The graph's service: wait its delay, say ready on fd 3, then stay up as the mark."""
    return f"sleep {delay:.3f}; echo >&3; exec {SLEEP} {mark}"


def graph_round(n: int, depth: int, seed: int) -> dict[str, float]:
    """corral only: the graph of ``graph_spec``, ready on fd 3 (``ready_fd``); time to all
    ready, against the critical path and against the graph floor."""
    spec = graph_spec(n, depth, seed)
    mark = str(random.randrange(10**8, 10**9))
    lines = [
        f'[service.{name}]\nscript = "{service_script(delay, mark)}"\n'
        f"ready_fd = 3\nautostart = false\nrequires = {json.dumps(needs)}\n"
        for name, (delay, needs) in spec.items()
    ]
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-graph-", dir=RUN_DIR))
    (workdir / "corral.toml").write_text("\n".join(lines))
    env = dict(os.environ, CORRAL_SOCKET=str(workdir / "control.sock"), CORRAL_WATCH="0")
    daemon = subprocess.Popen([str(CORRAL), "up", "-c", "corral.toml"], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(workdir / "control.sock") and time.monotonic() < deadline:
            time.sleep(0.01)
        top = [{"name": f"l{depth - 1}s{i}"} for i in range(n // depth)]
        request = json.dumps({"cmd": "start", "targets": top}).encode() + b"\n"
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(workdir / "control.sock"))
        began = time.perf_counter()
        sock.sendall(request)
        reply = json.loads(sock.makefile("rb").readline())
        took = time.perf_counter() - began
        sock.close()
        if not reply.get("ok"):
            raise RuntimeError(f"graph start failed: {reply}")
    finally:
        subprocess.run([str(CORRAL), "down"], env=env, timeout=120, capture_output=True)
        with contextlib.suppress(subprocess.TimeoutExpired):  # its cgroups go as it exits
            daemon.wait(timeout=30)
        try:
            os.killpg(daemon.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        daemon.wait(timeout=30)
        for pid in count_marked(mark):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)
    path = critical_path(spec)
    floor = graph_floor(spec)
    return {"ready": took, "critical": path, "ratio": took / path, "floor": floor,
            "to_floor": took / floor}  # fmt: skip


def graph_floor(spec: dict[str, tuple[float, list[str]]]) -> float:
    """The physical limit of the graph here: the same shell services, each posix_spawn'ed the
    moment its requirements said ready, by a bare select loop with no bookkeeping at all."""
    mark = str(random.randrange(10**8, 10**9))
    waiting = {name: set(needs) for name, (_, needs) in spec.items()}
    dependents: dict[str, list[str]] = {name: [] for name in spec}
    for name, (_, needs) in spec.items():
        for need in needs:
            dependents[need].append(name)
    readers: dict[int, str] = {}
    pids: list[int] = []

    def launch(name: str) -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        actions = [(os.POSIX_SPAWN_DUP2, write_end, 3)]
        argv = ["/bin/sh", "-c", service_script(spec[name][0], mark)]
        pids.append(os.posix_spawn(argv[0], argv, os.environ, file_actions=actions))
        os.close(write_end)
        readers[read_end] = name
        poller.register(read_end, select.POLLIN)

    poller = select.poll()  # select() stops at fd 1024
    began = time.perf_counter()
    try:
        for name in [n for n, needs in waiting.items() if not needs]:
            launch(name)
        ready = 0
        while ready < len(spec):
            events = poller.poll(30_000)
            if not events:
                raise RuntimeError("graph floor: nothing became ready within 30 s")
            for fd, _ in events:
                poller.unregister(fd)
                name = readers.pop(fd)
                os.close(fd)
                ready += 1
                for dependent in dependents[name]:
                    waiting[dependent].discard(name)
                    if not waiting[dependent]:
                        launch(dependent)
        return time.perf_counter() - began
    finally:
        for pid in count_marked(mark) + pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for fd in readers:
            os.close(fd)


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    keys = rounds[0].keys()
    return {k: statistics.median(r[k] for r in rounds) for k in keys}


def cell(value: float | None, floor: float | None, corral: float | None) -> str:
    if value is None or value != value:
        return "—"
    text = f"{value:.3g}"
    ratios = []
    if floor and floor == floor:
        ratios.append(f"{value / floor:.2g}x floor")
    if corral and corral == corral:
        ratios.append(f"{value / corral:.2g}x corral")
    return f"{text} ({', '.join(ratios)})" if ratios else text


def table(results: dict[int, dict[str, dict[str, float]]], names: list[str]) -> str:
    out = []
    for n, by_manager in results.items():
        out.append(f"\n### N = {n}\n")
        present = [m for m in names if m in by_manager]
        out.append("| | " + " | ".join(present) + " |")
        out.append("|---" * (len(present) + 1) + "|")
        for label, key in METRICS:
            floor = by_manager.get("floor", {}).get(key)
            corral = by_manager.get("corral", {}).get(key)
            cells = []
            for m in present:
                value = by_manager[m].get(key)
                cells.append(cell(value, floor if m != "floor" else None,
                                  corral if m != "corral" else None))  # fmt: skip
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), "")
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpus} CPU(s) {model}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="N=20, corral and floor, fast")
    parser.add_argument("--n", default="100,1000", help="comma-separated N (default 100,1000)")
    parser.add_argument("--managers", default=",".join(ALL), help="which, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds measured")
    parser.add_argument("--graph", type=int, default=1000, help="services in the graph (0: skip)")
    parser.add_argument("--out", help="write the results here (markdown)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (the kernel's process events)", file=sys.stderr)
        return 2
    # As pip does at install: corral's bytecode compiled once, so neither its CLI nor its
    # daemon compiles sources at each start (an editable install under
    # PYTHONDONTWRITEBYTECODE would; the peers in bench/.venv are compiled by pip).
    import compileall

    import corral

    compileall.compile_dir(os.path.dirname(corral.__file__), quiet=1)
    if args.smoke:
        args.n, args.managers, args.rounds, args.idle, args.graph = "20", "floor,corral", 1, 1, 100
    sizes = [int(x) for x in args.n.split(",") if x]
    names = [m for m in args.managers.split(",") if m]
    results: dict[int, dict[str, dict[str, float]]] = {}
    for n in sizes:
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(args.rounds):  # round-robin: a slow spell of the machine hits all alike
            for name in names:
                try:
                    rounds[name].append(one_round(ALL[name], n, args.idle, False))
                except RuntimeError as exc:  # a failed round is left out, and said
                    print(f"  {name:12} N={n:<5} failed: {exc}")
        results[n] = {name: median_of(done) for name, done in rounds.items() if done}
    graph: dict[str, float] | None = None
    if args.graph:
        graph = median_of([graph_round(args.graph, 10, seed) for seed in range(args.rounds)])
    text = table(results, names)
    if graph is not None:
        text += (
            f"\n\n### corral: a graph of {args.graph} services, depth 10\n\n"
            f"all ready in {graph['ready']:.3f} s; critical path {graph['critical']:.3f} s; "
            f"ratio {graph['ratio']:.2f}; the graph floor (the same services launched by a bare "
            f"select loop) {graph['floor']:.3f} s, corral {graph['to_floor']:.2f}x that\n"
        )
    header = f"{time.strftime('%Y-%m-%d')} — {machine()}; median of {args.rounds} round(s)"
    print(f"\n{header}\n{text}")
    if args.out:
        Path(args.out).write_text(f"## {header}\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
