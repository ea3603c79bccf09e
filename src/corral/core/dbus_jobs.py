"""What the D-Bus bridge is to watch: the signals, names and bus names the current definitions
use. Pure.

(Filled in by the D-Bus work of issue 27; ``bridge_jobs.watched`` asks here.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.core.definition import Definition


def watched(definitions: Mapping[str, Definition]) -> dict[str, Any]:
    """The D-Bus bridge's ``watched`` answer."""
    return {}
