"""The patterns of ``ready = { log = ... }``: RE2's syntax, matched in time linear in the line.

A log probe's pattern is the user's, and corral never runs the user's code on its loop: with
Python's backtracking ``re``, ``(a+)+$`` against a line of 30 ``a`` and a ``!`` takes
minutes. RE2 (``google-re2``) has no backreferences or lookaround and never backtracks, so
the configuration check can refuse what it could not match safely, with RE2's reason.
"""

from __future__ import annotations

from typing import Any


def compile_log_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2; ValueError saying why RE2 refuses it. (RE2 is imported
    here, 4 ms, only by a configuration that has a log probe.)"""
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.log_errors = False  # RE2 would also print the reason on corral's stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"not a valid RE2 pattern (no backreferences or lookaround): {reason}"
        ) from None
