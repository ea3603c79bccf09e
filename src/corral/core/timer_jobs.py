"""What the timers bridge is to watch: the timers of the current definitions. Pure.

(Filled in by the timers work of issue 26; ``bridge_jobs.watched`` asks here.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.core.definition import Definition


def watched(definitions: Mapping[str, Definition]) -> dict[str, Any]:
    """The timers bridge's ``watched`` answer."""
    return {}
