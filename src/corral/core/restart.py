"""Respawn policy: whether an ended main process comes back, how soon, and when to give up.

Pure functions of the exit, the policy and ``now``; the machine keeps the counts.

``restart_limit = [N, S]`` ends a crash loop in ``failed`` two ways, so that every kind of
loop ends, however long each of its tries takes:

* more than N respawns within S seconds (systemd's StartLimitBurst/IntervalSec): a process
  that dies at once, ready or not, clean exit or crash;
* more than N respawns in a row whose process never became ready (supervisord's
  startretries): a start that times out after a minute counts like one that dies at once,
  so a loop of long failing starts, which no window of S seconds ever holds twice, ends too.

A process that became ready breaks the second count; one that was ready for a whole window
also resets the backoff, the delay before each respawn of a series, which doubles. A process
that comes up and later exits (a crash, or a clean exit under ``restart = "always"``) is no
failed start: it respawns as long as the window allows, as systemd and supervisord do.
"""

from __future__ import annotations

from msgspec import Struct

from corral.core.states import RestartMode

#: Exponential backoff never waits longer than this (unless restart_delay itself is longer).
MAX_BACKOFF = 30.0


class RestartPolicy(Struct, frozen=True):
    """The respawn keys of a definition: ``restart``, ``restart_delay``, ``restart_limit``
    (``burst`` and ``interval``), ``normal_exit``."""

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
    policy: RestartPolicy, history: tuple[float, ...], unready: int, now: float
) -> tuple[bool, tuple[float, ...]]:
    """Check ``restart_limit`` before one more respawn: at most ``burst`` respawns within
    ``interval`` seconds (``history``, their times), and at most ``burst`` in a row whose
    process never became ready (``unready`` counts the try that just ended too).

    Returns whether one more is allowed now, and the history to keep (only the window's
    entries, plus ``now`` when admitted), so the history never grows without bound.
    """
    recent = tuple(t for t in history if now - t < policy.interval)
    if len(recent) >= policy.burst or unready > policy.burst:
        return False, recent
    return True, (*recent, now)


def unready_after(unready: int, ready_since: float | None) -> int:
    """Tries in a row that never became ready, once the one that just ended is counted."""
    return 0 if ready_since is not None else unready + 1


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
