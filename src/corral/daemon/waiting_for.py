"""What an instance waits for, in a few words: the ``waiting_for`` of a waiting command's
progress lines (docs/protocol.md lists them), read from its machine record and the
supervisor's view of its neighbours. Reads only; changes nothing."""

from __future__ import annotations

from collections.abc import Iterable

from corral.core.gates import DOWN_STATES, is_up
from corral.core.graph import Edge
from corral.core.records import Instance, signal_name
from corral.core.states import Goal, ServiceType, State, TimerKind
from corral.daemon.runtime import Runtime, label
from corral.daemon.supervisor import Supervisor


def waiting_for(sup: Supervisor, rt: Runtime, inst: Instance) -> tuple[str, list[Runtime]]:
    """What the instance waits for now, in a few words, and the instances whose changes
    change that (requirements, the jobs its held event started or stopped, dependents)."""
    state = inst.state
    if state is State.STARTING:
        if rt.blockers:
            return "starting event: " + _labels(rt.blockers), list(rt.blockers)
        pending = _pending_needs(sup, inst.job)
        if pending:
            return "requirements: " + _labels(pending), pending
        return "starting event", []
    if state is State.STOPPING:
        if rt.blockers:
            return "stopping event: " + _labels(rt.blockers), list(rt.blockers)
        dependents = _dependents_going_down(sup, inst.job)
        if dependents:
            return "dependents to stop: " + _labels(dependents), dependents
        return "stopping event", []
    if inst.hook is not None:
        return f"{inst.hook} hook", []
    if state is State.SPAWNED:
        return _readiness(rt, inst), []
    if state is State.KILLED:
        number = 9 if inst.destroying else rt.definition.stop_signal
        return f"exit after SIG{signal_name(number)}", []
    if state is State.POST_STOP and inst.timer is TimerKind.RESPAWN:
        return "restart delay", []
    return "", []


def _readiness(rt: Runtime, inst: Instance) -> str:
    """What tells that this main process is ready (DESIGN.md's readiness, in its words)."""
    definition = rt.definition
    if definition.type is ServiceType.FORKING:
        return f"pid file {definition.pid_file}"
    if definition.type is ServiceType.ONESHOT:
        return "exit"
    probe = definition.ready
    probing = rt.readiness is not None and rt.readiness.probe is not None
    first = ""
    if definition.type is ServiceType.NOTIFY:
        first = "notify READY=1"
    elif definition.type is ServiceType.DBUS:
        first = f"bus name {definition.bus_name}"
    elif definition.ready_fd is not None:
        first = f"ready_fd {definition.ready_fd}"
    if probe is None:
        return first or "readiness"
    check = "log line" if probe.kind == "log" else f"{probe.kind} probe"
    return check if probing or not first else f"{first}, then {check}"


def _pending_needs(sup: Supervisor, name: str) -> list[Runtime]:
    """What ``name`` needs first that is not up yet (requires; wants and after that are on
    their way up)."""
    graph = sup.graph
    pending = []
    for edge in (Edge.REQUIRES, Edge.WANTS, Edge.AFTER):
        for need in graph.needs(name, edge):
            job = sup.jobs.get(need)
            rt = job.instances.get("") if job is not None else None
            if rt is None or is_up(rt.inst):
                continue
            if edge is Edge.REQUIRES or rt.inst.goal is Goal.START:
                pending.append(rt)
    return pending


def _dependents_going_down(sup: Supervisor, name: str) -> list[Runtime]:
    pending = []
    for dependent in sup.graph.dependents_of(name):
        job = sup.jobs.get(dependent)
        rt = job.instances.get("") if job is not None else None
        if rt is not None and rt.inst.wants_down and rt.inst.state not in DOWN_STATES:
            pending.append(rt)
    return pending


def _labels(runtimes: Iterable[Runtime]) -> str:
    return ", ".join(dict.fromkeys(label(rt) for rt in runtimes))
