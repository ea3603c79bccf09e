"""corral: a service manager with Upstart's job model and a loop that never blocks.

Layout: ``core`` is pure (no I/O, no clock), ``daemon`` is the asyncio shell that applies
the core's decisions, ``control`` is the socket protocol, ``cli`` the command line.

For Python users, the client and its records (docs/client.md)::

    import corral

    client = corral.Client()          # the socket the CLI would find from here
    client.start("web")
    for row in client.status():
        print(row.name, row.state, row.pid)

Importing this package imports nothing else (every ``corral`` command pays for what it
loads): each name below is loaded the first time it is used.
"""

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "ConfigError",
    "CorralError",
    "DaemonUnreachable",
    "Emitted",
    "Event",
    "LogLine",
    "NoSuchService",
    "OperationFailed",
    "Outcome",
    "Status",
    "UsageError",
    "__version__",
]

TYPE_CHECKING = False  # no typing at run time; type checkers read these imports
if TYPE_CHECKING:
    from corral.control.aio import AsyncClient as AsyncClient
    from corral.control.api import Client as Client
    from corral.control.records import Emitted as Emitted
    from corral.control.records import Event as Event
    from corral.control.records import LogLine as LogLine
    from corral.control.records import Outcome as Outcome
    from corral.control.records import Status as Status
    from corral.errors import ConfigError as ConfigError
    from corral.errors import CorralError as CorralError
    from corral.errors import DaemonUnreachable as DaemonUnreachable
    from corral.errors import NoSuchService as NoSuchService
    from corral.errors import OperationFailed as OperationFailed
    from corral.errors import UsageError as UsageError

#: Each public name -> the module that defines it.
_HOMES = {
    "AsyncClient": "corral.control.aio",
    "Client": "corral.control.api",
    "Emitted": "corral.control.records",
    "Event": "corral.control.records",
    "LogLine": "corral.control.records",
    "Outcome": "corral.control.records",
    "Status": "corral.control.records",
    "ConfigError": "corral.errors",
    "CorralError": "corral.errors",
    "DaemonUnreachable": "corral.errors",
    "NoSuchService": "corral.errors",
    "OperationFailed": "corral.errors",
    "UsageError": "corral.errors",
}


def __getattr__(name: str) -> object:
    """Load a public name on first use (PEP 562), and keep it here for the next."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'corral' has no attribute {name!r}")
    value = getattr(__import__(home, fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
