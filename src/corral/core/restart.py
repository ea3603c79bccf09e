"""Respawn policy: whether an ended main process comes back, how soon, and when to give up.

Pure functions of the exit, the policy and ``now``; the machine keeps the history.
"""

from __future__ import annotations

from msgspec import Struct

from corral.core.states import RestartMode

#: Exponential backoff never waits longer than this (unless restart_delay itself is longer).
MAX_BACKOFF = 30.0


class RestartPolicy(Struct, frozen=True):
    """The respawn keys of a definition: ``restart``, ``restart_delay``, ``restart_limit``,
    ``normal_exit``."""

    mode: RestartMode = RestartMode.NO
    delay: float = 0.1
    burst: int = 5
    interval: float = 10.0
    normal_statuses: frozenset[int] = frozenset({0})
    normal_signals: frozenset[int] = frozenset()


def is_normal_exit(policy: RestartPolicy, status: int | None, signal: int | None) -> bool:
    """An exit the user declared normal (``normal_exit``): no failure, no on-failure respawn."""
    if signal is not None:
        return signal in policy.normal_signals
    return status in policy.normal_statuses


def wants_respawn(policy: RestartPolicy, normal: bool) -> bool:
    """Whether the policy asks for a respawn of a main process that ended this way."""
    if policy.mode is RestartMode.ALWAYS:
        return True
    return policy.mode is RestartMode.ON_FAILURE and not normal


def admit_respawn(
    policy: RestartPolicy, history: tuple[float, ...], now: float
) -> tuple[bool, tuple[float, ...]]:
    """Check ``restart_limit``: at most ``burst`` respawns within ``interval`` seconds.

    Returns whether one more is allowed now, and the history to keep (only the window's
    entries, plus ``now`` when admitted), so the history never grows without bound.
    """
    recent = tuple(t for t in history if now - t < policy.interval)
    if len(recent) >= policy.burst:
        return False, recent
    return True, (*recent, now)


def backoff_delay(policy: RestartPolicy, consecutive: int) -> float:
    """Delay before respawn number ``consecutive`` (1-based) of an unbroken series.

    ``restart_delay`` doubles with each respawn, capped at MAX_BACKOFF; the series breaks
    (see :func:`stayed_up`) once a process stayed up.
    """
    if policy.delay <= 0:
        return 0.0
    grown: float = policy.delay * (2.0 ** max(0, consecutive - 1))
    return min(grown, max(MAX_BACKOFF, policy.delay))


def stayed_up(policy: RestartPolicy, ready_since: float | None, now: float) -> bool:
    """A process that was ready for a whole ``restart_limit`` window resets the backoff."""
    return ready_since is not None and now - ready_since >= policy.interval
