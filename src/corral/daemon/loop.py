"""The daemon's entry: load the configuration, wire the parts, run until told to stop.

Signals arrive through asyncio's self-pipe: SIGCHLD to the reaper, SIGTERM/SIGINT to an
orderly shutdown (every service stopped, then exit 0), as PID 1 in a container too.
With ``--health`` the HTTP endpoints (``health.py``, ``metrics.py``) are wired in too; without
it neither module, nor the library behind them, is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING

from corral.control.server import ControlServer
from corral.core.registry import Registry, build, describe_changes
from corral.daemon import leftovers
from corral.daemon.cgroups import CgroupProbe
from corral.daemon.commands import Commands
from corral.daemon.logs import Console
from corral.daemon.reaper import Reaper, become_subreaper
from corral.daemon.signals import SignalRouter
from corral.daemon.sources import read_sources
from corral.daemon.spawn import keep_inherited_fds
from corral.daemon.supervisor import Supervisor
from corral.daemon.watch import SourceWatch
from corral.errors import ConfigError

if TYPE_CHECKING:
    from corral.daemon.health import HealthServer


def socket_in_use(path: str) -> bool:
    """A daemon already answers there (a stale socket file does not count)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class Daemon:
    def __init__(
        self,
        sources: list[str],
        socket_path: str,
        state_dir: str,
        ready_fd: int | None,
        probe: CgroupProbe | None,
        health: tuple[str, int] | None = None,
    ) -> None:
        self.sources = sources
        self.health = health
        self._health_socket: socket.socket | None = None
        self._probe = probe
        self.socket_path = socket_path
        self.state_dir = state_dir
        self.ready_fd = ready_fd
        self.supervisor: Supervisor | None = None
        self.registry = Registry()
        self._console: Console | None = None
        self._shutdown: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._exit_code = 0

    async def run(self) -> int:
        # Until every service is started: see _settle_memory. Not for the imports before:
        # their garbage, left to one late collection, took 0.3 MB more for good.
        gc.disable()
        began = time.monotonic()
        probe = self._probe
        problem = self._load()
        if problem is not None:
            if probe is not None:
                probe.discard()
            print(f"corral: {problem}", file=sys.stderr)
            return 1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        keep_inherited_fds()
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        signals = SignalRouter(loop)
        reaper = Reaper(loop)
        reaper.install(signals)
        become_subreaper()
        console = Console(sys.stdout.fileno(), colour=_colour(sys.stdout))
        await console.open()
        # corral's own settings (CORRAL_WATCH, CORRAL_SPAWNER_FDS...) are not its services'
        # business: a process gets CORRAL_JOB, CORRAL_INSTANCE, CORRAL_SOCKET (DESIGN.md).
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        env["CORRAL_SOCKET"] = self.socket_path
        cgroups = None if probe is None else probe.cgroups(self.socket_path, loop)
        self.supervisor = Supervisor(
            self.registry.definitions,
            reaper=reaper,
            console=console,
            log_dir=os.path.join(self.state_dir, "logs"),
            base_env=env,
            cgroups=cgroups,
            wakeup_fd=signals.wakeup_fd,
            graph=self.registry.graph,
        )
        commands = Commands(self.supervisor, self.stop_all, self.exit, self.reload, self.show)
        server = ControlServer(self.socket_path, commands)
        await server.start()
        for number in (signal.SIGTERM, signal.SIGINT):
            signals.on(number, functools.partial(self._on_signal, number))
        signals.on(signal.SIGHUP, lambda: self._reload_quietly("SIGHUP"))
        watch = None
        if os.environ.get("CORRAL_WATCH") != "0":
            watch = SourceWatch(loop, self.sources, lambda: self._reload_quietly("a change"))
        self._console = console
        console.lines("corral", [f"listening on {self.socket_path}"])
        if cgroups is None:
            console.lines("corral", [_UNTRACKED])
        health = None
        if self._health_socket is not None:
            health = await self._serve_health(self._health_socket, self.supervisor, console, began)
        left = leftovers.find(self.state_dir, self.socket_path)
        if left is not None:
            await leftovers.stop(left, lambda text: console.lines("corral", [text]))
        record = leftovers.Record(loop, self.state_dir, self.supervisor.table)
        self.supervisor.driver.observers.append(record.changed)
        self._announce_ready()
        try:
            self.supervisor.startup()
        finally:
            _settle_memory()
        await self._done
        if watch is not None:
            watch.close()
        await server.close()
        if health is not None:
            await health.close()
        signals.close()
        record.remove()
        if self._exit_code == 0:
            console.lines("corral", ["all services stopped; bye"])
        console.flush()
        return self._exit_code

    def _load(self) -> str | None:
        """Read the configuration; what stops the start, if anything."""
        try:
            self.registry = build(read_sources(self.sources))
        except ConfigError as exc:
            return f"configuration error:\n{exc}"
        if socket_in_use(self.socket_path):
            return f"a daemon already listens on {self.socket_path}"
        if self.health is not None:
            return self._bind_health(*self.health)
        return None

    def _bind_health(self, host: str, port: int) -> str | None:
        """Check that the metrics library is there and bind ``--health``'s socket, before
        any service starts; what stops the start, if anything."""
        try:
            from corral.daemon import metrics  # noqa: F401  # prometheus-client, if installed
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("prometheus_client"):
                raise
            return "--health needs prometheus-client: pip install 'corral[health]'"
        from corral.daemon.health import listen

        try:
            self._health_socket = listen(host, port)
        except OSError as exc:
            shown = f"[{host}]" if ":" in host else host
            return f"cannot serve --health on {shown}:{port}: {exc.strerror or exc}"
        return None

    async def _serve_health(
        self, sock: socket.socket, supervisor: Supervisor, console: Console, began: float
    ) -> HealthServer:
        """Start the endpoints; count each start from now on (a driver observer)."""
        from corral.daemon.health import HealthServer, where
        from corral.daemon.metrics import Metrics

        metrics = Metrics(supervisor.status, time.monotonic, began)
        supervisor.driver.observers.append(metrics.observe)
        health = HealthServer(
            sock, supervisor.status, lambda: supervisor.shutting_down, metrics.render
        )
        await health.start()
        console.lines(
            "corral", [f"health endpoints on http://{where(sock)}/ (healthz, readyz, metrics)"]
        )
        return health

    def reload(self) -> dict[str, list[object]]:
        """Load the sources again; apply them only if they load without any error (else
        ConfigError, and nothing has changed)."""
        assert self.supervisor is not None
        registry = build(read_sources(self.sources, vanished_ok=True))
        self.registry = registry
        changes = self.supervisor.reconfigure(registry.definitions)
        gc.unfreeze()  # what the old definitions leave in cycles can be collected again
        _settle_memory()
        return changes

    def show(self) -> Registry:
        return self.registry

    def _reload_quietly(self, why: str) -> None:
        """A reload nobody waits for (a file changed, SIGHUP): its outcome goes to the log."""
        assert self.supervisor is not None and self._console is not None
        if self.supervisor.shutting_down:
            return
        try:
            summary = self.reload()
        except ConfigError as exc:
            self._console.lines("corral", [f"reload after {why} refused, nothing changed:",
                                           *str(exc).splitlines()])  # fmt: skip
            return
        self._console.lines("corral", [f"reloaded after {why}: {describe_changes(summary)}"])

    def _announce_ready(self) -> None:
        if self.ready_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.ready_fd, b"ready\n")
            os.close(self.ready_fd)

    def _on_signal(self, number: int) -> None:
        """The first SIGINT or SIGTERM stops every service in order, then the daemon exits;
        a second one, while that stop is under way, SIGKILLs what is left and exits 1."""
        assert self.supervisor is not None and self._console is not None
        if self._shutdown is not None:
            killed = self.supervisor.kill_everything()
            self._console.lines("corral", [f"killed {_services(killed)} that had not stopped"])
            self._exit_code = 1
            return
        running = self.supervisor.busy_instances()
        again = "Ctrl-C" if number == signal.SIGINT else "SIGTERM"
        self._console.lines("corral", [f"stopping {_services(running)} ({again} again to kill)"])

        async def stop_then_exit() -> None:
            await self.stop_all()
            self.exit()

        asyncio.get_running_loop().create_task(stop_then_exit())

    async def stop_all(self) -> None:
        """Stop everything, once however many ask; every caller waits for the end."""
        assert self.supervisor is not None
        if self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_task(self.supervisor.shutdown())
        await asyncio.shield(self._shutdown)

    def exit(self) -> None:
        """Let ``run`` return (after stop_all)."""
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


#: Said once at start where corral has no cgroups (CORRAL_CGROUPS=0, cgroup v1 only, no
#: writable v2 hierarchy): what a stop or destroy still reaches, and what it may miss.
_UNTRACKED = (
    "no cgroup v2 hierarchy corral may use here: a service's processes are found by process "
    "group, pid file, ancestry and CORRAL_* environment (a process that left all four escapes)"
)


def _services(count: int) -> str:
    return f"{count} service" + ("" if count == 1 else "s")


def _colour(stream: object) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set to anything (no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


def _settle_memory() -> None:
    """Collect once, set what is alive now apart from the collector for good, and let it run
    again. During the start-up burst it would walk the same new objects (definitions,
    instances, pipes) again and again, 30-60 ms at a thousand services; afterwards, left in
    the oldest generation, each full collection would walk them all once more (tens of ms
    in the middle of a respawn). Objects set apart are still freed when unreferenced; only
    garbage cycles among them wait for the next reload, which takes them back."""
    gc.collect()
    gc.freeze()
    gc.enable()


def serve(
    sources: list[str],
    socket_path: str,
    state_dir: str,
    ready_fd: int | None,
    probe: CgroupProbe | None,
    health: tuple[str, int] | None = None,
) -> int:
    """Run the daemon until it is told to exit; ``probe``, the cgroup test started early
    (``probe_cgroups``), else none: no cgroups; ``health``, where to serve ``--health``."""
    return asyncio.run(Daemon(sources, socket_path, state_dir, ready_fd, probe, health).run())
