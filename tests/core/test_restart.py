"""Respawn policy decisions, the restart_limit window and backoff."""

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


def test_limit_window_admits_burst_then_refuses_until_it_slides() -> None:
    policy = RestartPolicy(burst=3, interval=10.0)
    history: tuple[float, ...] = ()
    for t in (0.0, 1.0, 2.0):
        ok, history = admit_respawn(policy, history, t)
        assert ok
    ok, history = admit_respawn(policy, history, 3.0)
    assert not ok
    ok, history = admit_respawn(policy, history, 10.5)  # 0.0 left the window
    assert ok


@given(
    st.lists(st.floats(0, 100, allow_nan=False), max_size=30).map(sorted),
    st.integers(1, 10),
    st.floats(0.1, 50),
)
def test_never_more_than_burst_in_any_window(
    times: list[float], burst: int, interval: float
) -> None:
    policy = RestartPolicy(burst=burst, interval=interval)
    history: tuple[float, ...] = ()
    admitted = []
    for t in times:
        ok, history = admit_respawn(policy, history, t)
        if ok:
            admitted.append(t)
        assert len(history) <= burst
    for t in admitted:
        assert sum(1 for u in admitted if t <= u < t + interval) <= burst


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
