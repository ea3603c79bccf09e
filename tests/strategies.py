"""Hypothesis strategies shared by the core tests."""

from __future__ import annotations

from hypothesis import strategies as st

from corral.core.records import Instance, Policy
from corral.core.restart import RestartPolicy
from corral.core.states import Goal, ProcessKind, RestartMode, ServiceType, State

HOOKS = [ProcessKind.PRE_START, ProcessKind.POST_START, ProcessKind.PRE_STOP, ProcessKind.POST_STOP]

restart_policies = st.builds(
    RestartPolicy,
    mode=st.sampled_from(list(RestartMode)),
    delay=st.sampled_from([0.0, 0.1, 1.0]),
    burst=st.integers(1, 5),
    interval=st.sampled_from([1.0, 10.0]),
    normal_statuses=st.sampled_from([frozenset({0}), frozenset({0, 2})]),
)


def policies(**fixed: st.SearchStrategy[object]) -> st.SearchStrategy[Policy]:
    """Any policy; ``fixed`` narrows fields, to reach the rarer cases often."""
    fields: dict[str, st.SearchStrategy[object]] = {
        "has_main": st.booleans(),
        "type": st.sampled_from(list(ServiceType)),
        "signals_ready": st.booleans(),
        "hooks": st.frozensets(st.sampled_from(HOOKS)),
        "restart": restart_policies,
        "stop_timeout": st.sampled_from([0.5, 10.0]),
        "timeout_start": st.sampled_from([1.0, 90.0]),
    }
    fields.update(fixed)
    return st.builds(Policy, **fields)  # type: ignore[arg-type]


def instances(**fixed: st.SearchStrategy[object]) -> st.SearchStrategy[Instance]:
    """Any instance record, reachable or not (for properties that must hold for every one);
    ``fixed`` narrows fields, to reach the rarer cases often."""
    times = st.floats(0.0, 30.0)
    fields: dict[str, st.SearchStrategy[object]] = {
        "job": st.just("svc"),
        "state": st.sampled_from(list(State)),
        "goal": st.sampled_from(list(Goal)),
        "restarting": st.booleans(),
        "give_up": st.booleans(),
        "main_alive": st.booleans(),
        "destroying": st.booleans(),
        "ready_since": st.none() | times,
        "consecutive": st.integers(0, 6),
        "unready": st.integers(0, 6),
        "history": st.lists(times, max_size=6).map(lambda ts: tuple(sorted(ts))),
    }
    fields.update(fixed)
    return st.builds(Instance, **fields)  # type: ignore[arg-type]
