"""Hypothesis strategies shared by the core tests."""

from __future__ import annotations

from hypothesis import strategies as st

from corral.core.machine import Policy
from corral.core.restart import RestartPolicy
from corral.core.states import ProcessKind, RestartMode, ServiceType

HOOKS = [ProcessKind.PRE_START, ProcessKind.POST_START, ProcessKind.PRE_STOP, ProcessKind.POST_STOP]

restart_policies = st.builds(
    RestartPolicy,
    mode=st.sampled_from(list(RestartMode)),
    delay=st.sampled_from([0.0, 0.1, 1.0]),
    burst=st.integers(1, 5),
    interval=st.sampled_from([1.0, 10.0]),
    normal_statuses=st.sampled_from([frozenset({0}), frozenset({0, 2})]),
)


def policies() -> st.SearchStrategy[Policy]:
    return st.builds(
        Policy,
        has_main=st.booleans(),
        type=st.sampled_from(list(ServiceType)),
        signals_ready=st.booleans(),
        hooks=st.frozensets(st.sampled_from(HOOKS)),
        restart=restart_policies,
        stop_timeout=st.sampled_from([0.5, 10.0]),
        timeout_start=st.sampled_from([1.0, 90.0]),
    )
