"""The control protocol's version: what ``hello`` answers, and the ``"v"`` every request of
the CLI carries (a daemon of another version refuses it, code 4). Its own module so that
clients read it without the protocol's encoder (msgspec costs milliseconds to import).

History (cf. dinit's control-cmds.h):

1. the first;
2. ``hello`` and ``"v"``; ``progress`` for ``start``/``stop``/``restart``; ``logs`` of
   ``targets`` (none: every service), merged in time order; ``start``/``restart`` wait out
   ``start_grace``, and their results carry ``done``.
"""

PROTOCOL_VERSION = 2

#: What a client says of a daemon of protocol 1, which refuses ``"v"`` as an unknown argument.
OLDER_DAEMON = (
    "the daemon is an older corral (protocol 1, which does not say its version); "
    "use the corral that started it"
)


def older_daemon(message: str) -> bool:
    """Whether a refusal (code 2) is a daemon of protocol 1 not knowing ``"v"``."""
    _, found, unknown = message.partition("unknown argument(s) ")
    return bool(found) and "v" in unknown.split(", ")
