"""Respawn policy decisions, the restart_limit series and backoff."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.core.restart import (
    MAX_BACKOFF,
    RestartPolicy,
    admit_respawn,
    backoff_delay,
    is_normal_exit,
    stayed_up,
    unready_after,
    wants_respawn,
)
from corral.core.states import RestartMode


def test_modes() -> None:
    for mode, normal, expected in [
        (RestartMode.NO, False, False),
        (RestartMode.NO, True, False),
        (RestartMode.ON_FAILURE, False, True),
        (RestartMode.ON_FAILURE, True, False),
        (RestartMode.ALWAYS, True, True),
        (RestartMode.ALWAYS, False, True),
    ]:
        assert wants_respawn(RestartPolicy(mode=mode), normal) is expected


def test_normal_exit_statuses_and_signals() -> None:
    policy = RestartPolicy(normal_statuses=frozenset({0, 3}), normal_signals=frozenset({15}))
    assert is_normal_exit(policy, 0, None) and is_normal_exit(policy, 3, None)
    assert not is_normal_exit(policy, 1, None)
    assert is_normal_exit(policy, None, 15) and not is_normal_exit(policy, None, 9)


def test_the_window_admits_burst_respawns_then_refuses_until_they_age_out() -> None:
    policy = RestartPolicy(burst=3, interval=10.0)
    history: tuple[float, ...] = ()
    admitted = []
    for now in (0.0, 1.0, 2.0, 3.0):
        ok, history = admit_respawn(policy, history, 0, now)
        admitted.append(ok)
    assert admitted == [True, True, True, False]
    assert history == (0.0, 1.0, 2.0)
    assert admit_respawn(policy, history, 0, 10.5) == (True, (1.0, 2.0, 10.5))


def test_tries_in_a_row_that_never_became_ready_end_it_whatever_they_took() -> None:
    """Time alone breaks nothing: a start that times out after a minute counts like one that
    dies at once; only a process that became ready starts the count again."""
    policy = RestartPolicy(burst=3, interval=10.0)
    assert unready_after(2, None) == 3  # never ready (a start that timed out)
    assert unready_after(2, 995.0) == 0  # became ready, however briefly
    assert admit_respawn(policy, (), 3, 1000.0)[0]
    assert not admit_respawn(policy, (), 4, 1000.0)[0]


@given(
    st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=30),
    st.integers(1, 10),
    st.integers(1, 20),
)
def test_never_more_than_burst_unready_respawns_in_a_row_nor_in_a_window(
    tries: list[tuple[int, bool]], burst: int, interval: int
) -> None:
    """Feed tries that last ``took`` seconds and ``came_up`` or not, each respawned while
    admitted: at most ``burst`` respawns in a row after tries that never came up, and at
    most ``burst`` within any window. (Whole seconds, so that "a window" is exact.)"""
    policy = RestartPolicy(burst=burst, interval=float(interval))
    now, history, unready, in_a_row, times = 0, (), 0, 0, []
    for took, came_up in tries:
        now += took
        unready = unready_after(unready, now - took if came_up else None)
        admitted, history = admit_respawn(policy, history, unready, now)
        if not admitted:
            break
        in_a_row = 0 if came_up else in_a_row + 1
        times.append(now)
        assert in_a_row <= burst
        assert len([t for t in times if now - t < interval]) <= burst


def test_backoff_doubles_and_caps() -> None:
    policy = RestartPolicy(delay=0.5)
    assert [backoff_delay(policy, n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(policy, 50) == MAX_BACKOFF
    assert backoff_delay(RestartPolicy(delay=0), 7) == 0
    assert backoff_delay(RestartPolicy(delay=60), 3) == 60  # a long delay is never shortened


def test_stayed_up_resets_after_a_whole_window() -> None:
    policy = RestartPolicy(interval=10.0)
    assert stayed_up(policy, 0.0, 10.0) and not stayed_up(policy, 0.0, 9.9)
    assert not stayed_up(policy, None, 100.0)
