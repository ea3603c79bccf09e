"""``corral up``: run the daemon here, or start it in the background (``-d``).

Imported by the quick path as well as the full CLI, so it imports nothing at the top: the
daemon's modules load only once the arguments are known to start one.
"""

import os
import sys

from corral.errors import EXIT_FAILED, EXIT_OK


def run_up(
    configs: list[str],
    detach: bool,
    socket: str | None,
    ready_fd: int | None,
    health: tuple[str, int] | None = None,
) -> int:
    """Run the daemon (``health``: where to serve ``--health``, as ``parse_address`` read it)."""
    from corral.control.paths import STATE_DIR, daemon_socket
    from corral.daemon.sources import default_sources, project_dir

    cwd = os.getcwd()
    sources = [os.path.abspath(p) for p in configs] or default_sources(cwd)
    project = project_dir(sources, cwd)
    socket_path = daemon_socket(socket, project)
    state_dir = (
        "/var/log/corral" if os.getpid() == 1 and not configs else os.path.join(project, STATE_DIR)
    )
    if detach:
        return _detach(sources, socket_path, state_dir, health)
    # The cgroup test waits 5-12 ms on the kernel: started here, it runs while the rest of
    # the daemon's modules load, rather than on the way of the first spawn.
    from corral.daemon.cgroups import probe_cgroups

    probe = probe_cgroups()
    from corral.daemon.loop import serve

    return serve(sources, socket_path, state_dir, ready_fd, probe, health)


def parse_address(text: str) -> tuple[str, int] | None:
    """``HOST:PORT``, ``[HOST]:PORT`` (IPv6) or ``:PORT`` (every address) → (host, port),
    host "" for every address; None if it is none of these. The quick path and argparse's
    ``--health`` (``corral.cli.arguments``) both read it here, so both take the same."""
    host, colon, port = text.rpartition(":")
    if not colon or not (port.isascii() and port.isdecimal()) or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]") and len(host) > 2:
        host = host[1:-1]
    elif ":" in host or "[" in host or "]" in host:
        return None
    if any(c.isspace() for c in host):
        return None
    return host, int(port)


def address_text(address: tuple[str, int]) -> str:
    """An address as ``parse_address`` reads it back."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _detach(
    sources: list[str], socket_path: str, state_dir: str, health: tuple[str, int] | None
) -> int:
    """Start the daemon in its own session; return once its socket accepts (or it failed)."""
    import select
    import subprocess
    import time

    os.makedirs(state_dir, exist_ok=True)
    log_path = os.path.join(state_dir, "corral.log")
    read_end, write_end = os.pipe()
    argv = [
        sys.executable,
        "-m",
        "corral",
        "up",
        "--socket",
        socket_path,
        "--ready-fd",
        str(write_end),
    ]
    for source in sources:
        argv += ["-c", source]
    if health is not None:
        argv += ["--health", address_text(health)]
    with open(log_path, "ab") as log:
        start = log.tell()
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    deadline = time.monotonic() + 30
    message = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(read_end, 64)
        if not chunk:
            break
        message += chunk
        if b"ready" in message:
            os.close(read_end)
            print(f"corral: running in the background (pid {child.pid}), socket {socket_path}")
            return EXIT_OK
    os.close(read_end)
    if child.poll() is None:
        print(f"corral: the daemon did not become ready; see {log_path}", file=sys.stderr)
        return EXIT_FAILED
    with open(log_path, "rb") as log:
        log.seek(start)
        sys.stderr.write(log.read().decode("utf-8", "replace"))
    return EXIT_FAILED
