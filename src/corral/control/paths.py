"""Where the control socket is, for the daemon and for clients. Cheap to import."""

import os

SOCKET_NAME = "control.sock"
STATE_DIR = ".corral"
SYSTEM_SOCKET = "/run/corral/control.sock"


def unreachable(path: str, reason: str) -> str:
    """What the CLI says when no daemon answers at ``path``."""
    return f"cannot reach corral at {path} ({reason}); is `corral up` running here?"


#: What the CLI says when the daemon hangs up without a reply.
HUNG_UP = "corral closed the connection before answering"


def daemon_socket(explicit: str | None, project_dir: str) -> str:
    """--socket, else CORRAL_SOCKET, else /run/corral for PID 1, else beside the config."""
    if explicit:
        return os.path.abspath(explicit)
    if env := os.environ.get("CORRAL_SOCKET"):
        return os.path.abspath(env)
    if os.getpid() == 1:
        return SYSTEM_SOCKET
    return os.path.join(os.path.abspath(project_dir), STATE_DIR, SOCKET_NAME)


def client_socket(explicit: str | None) -> str:
    """--socket, else CORRAL_SOCKET, else the nearest ``.corral/control.sock`` of the user's
    own (or root's) from the current directory upwards (like git finds .git), else the
    system socket for root."""
    if explicit:
        return explicit
    if env := os.environ.get("CORRAL_SOCKET"):
        return env
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, STATE_DIR, SOCKET_NAME)
        if _trusted(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    if os.getuid() == 0 and os.path.exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    return os.path.join(os.getcwd(), STATE_DIR, SOCKET_NAME)


def _trusted(path: str) -> bool:
    """Whether ``path`` exists and is the user's own or root's. One that another user left
    in a shared parent (``/tmp/.corral/``) is passed over, as git passes over a ``.git`` it
    does not own: its daemon would answer for corral, and be believed."""
    try:
        owner = os.stat(path).st_uid
    except OSError:
        return False
    return owner in (os.getuid(), 0)
