"""Instance keys: ``instance = "${TTY}"`` expanded from an instance's environment.

Pure. A key names an instance in addresses (``getty:tty1``, ``per_file:/srv/in/a.csv``), so
a value that is empty or holds control characters is refused with a message that says which
and why, before any instance is made. A key may hold ``/`` (a file's path, from
``path-exists(FILE=*)``): it is never used as a path as it is; where it names something on
disk (the instance's cgroup directory) it is escaped (``escaped``), so no key reaches outside.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral.core.expand import VARIABLE, UnsetVariable, expand


class InstanceError(ValueError):
    """An instance key that cannot be made, with the reason for humans."""


def variables_of(template: str) -> list[str]:
    """The variables a template uses, in order, once each (``$$`` is not one)."""
    names = (match.group(1) or match.group(2) for match in VARIABLE.finditer(template))
    return list(dict.fromkeys(name for name in names if name))


def sole_variable(template: str) -> str | None:
    """``TTY`` for ``"${TTY}"`` or ``"$TTY"``: then ``getty:tty1`` can mean ``TTY=tty1``."""
    match = VARIABLE.fullmatch(template)
    return (match.group(1) or match.group(2)) if match else None


def bad_key(key: str) -> str | None:
    """Why a key cannot name an instance, or None when it can."""
    if not key:
        return "an instance key cannot be empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return f"instance key {key!r} contains a control character"
    return None


def instance_key(job: str, template: str, env: Mapping[str, str]) -> str:
    """The key of the instance ``env`` describes; InstanceError says what is missing or bad."""
    try:
        key = expand(template, env)
    except UnsetVariable as exc:
        raise InstanceError(
            f"{job} has one instance per {template}: give {exc.name}=VALUE "
            f"(or address an existing instance as {job}:KEY)"
        ) from None
    reason = bad_key(key)
    if reason is not None:
        raise InstanceError(f"{job}: {reason}")
    return key


def env_for_key(template: str, key: str) -> dict[str, str]:
    """What ``NAME:KEY`` tells of the environment: ``{TTY: key}`` for ``"${TTY}"``, else
    nothing (a key made of several variables cannot be split back)."""
    name = sole_variable(template)
    return {name: key} if name else {}


def label_of(job: str, key: str) -> str:
    """``name`` or ``name:instance``, as users address an instance (and its cgroup is named)."""
    return f"{job}:{key}" if key else job


def escaped(label: str) -> str:
    """An instance's label as one file name: ``%`` and ``/`` as ``%25`` and ``%2F`` (each label
    its own name: no two collide, none is ``.``/``..`` or has a ``/``)."""
    name = label.replace("%", "%25").replace("/", "%2F")
    return {"": "%", ".": "%2E", "..": "%2E%2E"}.get(name, name)  # % alone: no label gives it
