"""corral's definitions as one Kubernetes workload: the services of a project run together,
so they become the containers of one pod, the oneshots its init containers (run in order
of their dependencies before the rest, as corral runs what others require first).

A Deployment when every container restarts ``always`` (a Deployment's pods restart
always); otherwise a bare Pod whose ``restartPolicy`` is the services' ``restart``
(``on-failure`` is ``OnFailure``, ``no`` is ``Never``). A ``ready`` probe is the container's
readinessProbe; ``post_start``/``pre_stop`` its lifecycle hooks; the longest
``stop_timeout`` the pod's grace period. corral runs programs of its own machine, Kubernetes
those of an image: every container gets the image given to the exporter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from corral.convert.export_common import Exported, Report, Where, argv_of, on_demand
from corral.core.definition import Command, Definition, Probe
from corral.core.states import ProcessKind, RestartMode, ServiceType

_POLICIES = {RestartMode.ALWAYS: "Always", RestartMode.ON_FAILURE: "OnFailure",
             RestartMode.NO: "Never"}  # fmt: skip
_NOT_IN_KUBERNETES = {
    "env_file": "Kubernetes passes files as ConfigMaps, not env files",
    "umask": "Kubernetes has no umask",
    "restart_delay": "Kubernetes backs off by itself",
    "restart_limit": "Kubernetes restarts without a limit",
    "normal_exit": "Kubernetes counts only status 0 as success",
    "timeout_start": "a startup deadline is a startupProbe, which needs a probe",
    "start_grace": "Kubernetes has no grace after the start",
    "pre_start": "write it as an init container",
    "post_stop": "Kubernetes runs nothing after a container stops",
    "provides": "a container has one name",
    "actions": "Kubernetes has no actions (kubectl exec runs commands)",
    "log": "Kubernetes keeps container output itself",
    "description": "a container has no description",
    "after": "a pod's containers start together",
    "wants": "a pod's containers start together",
    "reload_signal": "Kubernetes has no reload",
    "ready_fd": "Kubernetes knows readiness by probes only",
    "pid_file": "a container's main process is its own",
    "group": "runAsGroup takes a number",
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0")


def container_name(name: str) -> str:
    """A service name as a DNS label (lower case, digits and ``-``)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63].rstrip("-") or "service"


def export_kubernetes(
    definitions: Mapping[str, Definition], where: Where, project: str, image: str
) -> Exported:
    """``PROJECT.yaml``: a Deployment or a Pod holding every service that runs at ``up``."""
    exported = Exported()
    report = Report(where, exported)
    running: list[Definition] = []
    for d in definitions.values():
        reason = on_demand(d) or (None if d.autostart else "not started at up")
        if reason is None:
            running.append(d)
        else:
            report.skip(d, "exec" if d.main is None else "autostart",
                        f"{reason}: a pod runs what it holds from the start", always=True)  # fmt: skip
    oneshots = [d for d in _in_order(running) if d.type is ServiceType.ONESHOT]
    mains = [d for d in running if d.type is not ServiceType.ONESHOT]
    policy = _policy(mains, report)
    spec: dict[str, Any] = {"restartPolicy": policy}
    if oneshots:
        spec["initContainers"] = [_container(d, image, report) for d in oneshots]
    spec["containers"] = [_container(d, image, report) for d in mains]
    grace = max((d.stop_timeout for d in running), default=30.0)
    spec["terminationGracePeriodSeconds"] = math.ceil(grace)
    name = container_name(project)
    labels = {"app": name}
    if policy == "Always" and mains:
        manifest: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}},
        }  # fmt: skip
    else:
        manifest = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "labels": labels}, "spec": spec}  # fmt: skip
    if not mains:
        spec["containers"] = spec.pop("initContainers", [])
    import yaml

    exported.files[f"{name}.yaml"] = yaml.safe_dump(manifest, sort_keys=False)
    return exported


def _in_order(services: list[Definition]) -> list[Definition]:
    """Requirements before what requires them (init containers run one after another)."""
    by_name = {d.name: d for d in services}
    done: dict[str, Definition] = {}

    def visit(d: Definition, path: tuple[str, ...]) -> None:
        if d.name in done or d.name in path:
            return
        for need in (*d.requires, *d.wants, *d.after):
            if need in by_name:
                visit(by_name[need], (*path, d.name))
        done[d.name] = d

    for d in services:
        visit(d, ())
    return list(done.values())


def _policy(mains: list[Definition], report: Report) -> str:
    """The pod's one restart policy: the services' when they agree, else the first's."""
    if not mains:
        return "OnFailure"
    policy = _POLICIES[mains[0].restart.mode]
    for d in mains[1:]:
        if _POLICIES[d.restart.mode] != policy:
            report.skip(d, "restart", f"a pod has one restart policy, here {policy}",
                        always=True)  # fmt: skip
    return policy


def _container(d: Definition, image: str, report: Report) -> dict[str, Any]:
    report.skip_all(d, _NOT_IN_KUBERNETES)
    if d.stop_signal != 15:
        report.skip(d, "stop_signal", "Kubernetes stops a container with TERM")
    assert d.main is not None
    container: dict[str, Any] = {"name": container_name(d.name), "image": image,
                                 "command": _command(d, d.main)}  # fmt: skip
    if d.cwd:
        container["workingDir"] = d.cwd
    if d.env:
        container["env"] = [{"name": k, "value": v} for k, v in d.env.items()]
    if isinstance(d.user, int):
        container["securityContext"] = {"runAsUser": d.user}
    elif d.user is not None:
        report.skip(d, "user", "runAsUser takes a number (the image's user names are its own)")
    if d.ready is not None:
        probe = _probe(d, d.ready, report)
        if probe is not None:
            container["readinessProbe"] = probe
    lifecycle = {}
    for kind, hook in ((ProcessKind.POST_START, "postStart"), (ProcessKind.PRE_STOP, "preStop")):
        if kind in d.hooks:
            lifecycle[hook] = {"exec": {"command": _command(d, d.hooks[kind])}}
    if lifecycle:
        container["lifecycle"] = lifecycle
    return container


def _probe(d: Definition, ready: Probe, report: Report) -> dict[str, Any] | None:
    probe: dict[str, Any]
    if ready.kind == "tcp":
        host, _, port = ready.target.rpartition(":")
        probe = {"tcpSocket": _at(host, {"port": int(port)})}
    elif ready.kind == "http":
        match = re.match(r"^http://([^/:]+|\[[^\]]+\])(?::(\d+))?(/.*)?$", ready.target)
        if match is None:
            report.skip(d, "ready", "cannot read the probe's URL")
            return None
        host, port, path = match.groups()
        probe = {"httpGet": _at(host, {"path": path or "/", "port": int(port or 80)})}
    elif ready.kind == "exec" and ready.command is not None:
        probe = {"exec": {"command": _command(d, ready.command)}}
    else:
        report.skip(d, "ready", "Kubernetes has no probe that reads the output")
        return None
    probe["periodSeconds"] = max(1, math.ceil(ready.interval))
    if ready.timeout is not None:
        report.skip(d, "ready", "a readiness probe has no overall deadline")
    return probe


def _at(host: str, probe: dict[str, Any]) -> dict[str, Any]:
    """A probe aimed at the pod's own address (where loopback services are not reached),
    or at another host."""
    return probe if host in _LOOPBACK else {**probe, "host": host.strip("[]")}


def _command(d: Definition, command: Command) -> list[str]:
    """argv with corral's ``${VAR}`` in Kubernetes' ``$(VAR)`` syntax; a literal ``$(``
    (a script's command substitution too) kept by doubling its dollar."""
    argv = argv_of(d, command)
    if command.script is not None:
        return [*argv[:-1], argv[-1].replace("$(", "$$(")]
    return [_kubernetes_word(word) for word in argv]


_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _kubernetes_word(word: str) -> str:
    pieces = []
    last = 0
    for match in _VARIABLE.finditer(word):
        pieces.append(word[last : match.start()].replace("$(", "$$("))
        name = match.group(1) or match.group(2)
        pieces.append("$" if name is None else f"$({name})")
        last = match.end()
    pieces.append(word[last:].replace("$(", "$$("))
    return "".join(pieces)
