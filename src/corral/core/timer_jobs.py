"""What the timers bridge is to watch: the timers of the current definitions. Pure.

``bridge_jobs.watched`` asks here; the answer is ``{"timers": {NAME: {"every": seconds or
null, "on_calendar": text or null, "persistent": bool, "random_delay": seconds}}}``, one entry
per service with ``every`` or ``on_calendar``, and is sent to the bridge again after each
reload that changes it (``bridges/timers.py`` reads it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.core.definition import Definition


def timer_of(definition: Definition) -> dict[str, Any]:
    """One timer as the bridge is told it."""
    calendar = definition.on_calendar
    return {
        "every": definition.every,
        "on_calendar": calendar.text if calendar is not None else None,
        "persistent": definition.persistent,
        "random_delay": definition.random_delay,
    }


def watched(definitions: Mapping[str, Definition]) -> dict[str, Any]:
    """The timers bridge's ``watched`` answer."""
    return {"timers": {name: timer_of(d) for name, d in sorted(definitions.items()) if d.timer}}
