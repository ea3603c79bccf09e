"""Instance addresses as protocol targets: ``NAME``, ``NAME:INSTANCE``, ``NAME KEY=VALUE...``.

The rule the CLI follows (``corral start getty TTY=tty1``), here below the CLI so that the
Python client takes the same words. Cheap to import: no ``__future__``, no ``typing`` at run
time, as the quick CLI path may load it.
"""

from corral.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


def parse_targets(words: "Iterable[str]") -> "list[dict[str, Any]]":
    """Words as protocol targets; ``KEY=VALUE`` belongs to the name before it."""
    targets: list[dict[str, Any]] = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key and ":" not in key:
            if not targets:
                raise UsageError(f"{word}: KEY=VALUE must follow a service name")
            targets[-1].setdefault("env", {})[key] = value
            continue
        name, sep, instance = word.partition(":")
        if not name:
            raise UsageError(f"{word!r}: expected NAME or NAME:INSTANCE")
        target: dict[str, Any] = {"name": name}
        if sep:
            target["instance"] = instance
        targets.append(target)
    if not targets:
        raise UsageError("expected at least one service name")
    return targets
