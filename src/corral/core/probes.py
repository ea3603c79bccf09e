"""The probe tables of the configuration: ``ready`` (passes once, before the service counts
as ready) and ``liveness`` (repeated while it runs). Each parser takes the raw TOML value and
returns the typed one, or raises :class:`BadValue` saying what was expected. Pure.
"""

from __future__ import annotations

import re

from corral.core.definition import LivenessCheck, Probe
from corral.core.patterns import compile_log_pattern
from corral.core.scalars import BadValue, duration, hook, integer, nonempty_string, type_name

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_HTTP_URL = re.compile(r"^http://[^/\s]+(/\S*)?$")

#: ``liveness``'s defaults, Kubernetes' own: a probe every 10 s, 3 failures in a row.
LIVENESS_INTERVAL = 10.0
LIVENESS_FAILURES = 3


def host_port(text: str, key: str) -> str:
    """``HOST:PORT``, checked (``key`` names the key in the message)."""
    match = _HOST_PORT.match(text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise BadValue(f'{key}: expected "HOST:PORT" such as "127.0.0.1:8000", got "{text}"')
    return text


def _target(key: str, kind: str, raw: object, interval: float, timeout: float | None) -> Probe:
    """One probe of ``kind`` (tcp, http, exec or log) aimed at ``raw``."""
    if kind == "exec":
        return Probe(kind, command=hook(raw), interval=interval, timeout=timeout)
    target = nonempty_string(raw)
    if kind == "tcp":
        host_port(target, f"{key}.tcp")
    elif kind == "http":
        if not _HTTP_URL.match(target):
            raise BadValue(f'{key}.http: expected a URL such as "http://127.0.0.1:8000/health", '
                           f'got "{target}"')  # fmt: skip
    else:
        try:
            compile_log_pattern(target)
        except ValueError as exc:
            raise BadValue(f"{key}.log: {exc}") from None
    return Probe(kind, target=target, interval=interval, timeout=timeout)


def _one_kind(key: str, value: dict[str, object], kinds: tuple[str, ...]) -> str:
    found = [k for k in kinds if k in value]
    if len(found) != 1:
        raise BadValue(f"{key}: expected exactly one of {', '.join(kinds)}")
    return found[0]


def _interval(key: str, value: dict[str, object], default: float) -> float:
    interval = duration(value.get("interval", default))
    if interval <= 0:
        raise BadValue(f"{key}.interval: expected a duration above 0")
    return interval


def ready_probe(value: object) -> Probe:
    """``ready = { tcp | http | exec | log, interval, timeout }``."""
    if not isinstance(value, dict):
        raise BadValue(
            f'expected a table such as {{ tcp = "127.0.0.1:8000" }}, got {type_name(value)}'
        )
    kinds = ("tcp", "http", "exec", "log")
    unknown = set(value) - {*kinds, "interval", "timeout"}
    if unknown:
        raise BadValue(f"unknown ready key(s) {sorted(unknown)}: expected tcp, http, exec or log, "
                       "with interval and timeout")  # fmt: skip
    kind = _one_kind("ready", value, kinds)
    interval = _interval("ready", value, 0.2)
    timeout = duration(value["timeout"]) if "timeout" in value else None
    return _target("ready", kind, value[kind], interval, timeout)


def liveness(value: object) -> LivenessCheck:
    """``liveness = { tcp | http | exec, interval, failures }``."""
    if not isinstance(value, dict):
        raise BadValue(
            f'expected a table such as {{ http = "http://127.0.0.1:8000/health" }}, '
            f"got {type_name(value)}"
        )
    kinds = ("tcp", "http", "exec")
    unknown = set(value) - {*kinds, "interval", "failures"}
    if unknown:
        raise BadValue(f"unknown liveness key(s) {sorted(unknown)}: expected tcp, http or exec, "
                       "with interval and failures")  # fmt: skip
    kind = _one_kind("liveness", value, kinds)
    interval = _interval("liveness", value, LIVENESS_INTERVAL)
    try:
        failures = integer(value.get("failures", LIVENESS_FAILURES), 1, 1000)
    except BadValue as exc:
        raise BadValue(f"liveness.failures: {exc}") from None
    return LivenessCheck(_target("liveness", kind, value[kind], interval, None), failures)
