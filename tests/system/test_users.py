"""Every process of a service with ``user`` runs with that user's uid, its primary group (or
``group``) and only the supplementary groups that list the user, as a login gives them: the
main process, a hook, an action and an exec probe, by either spawn path."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.system.conftest import Corral, wait_until


@pytest.fixture(autouse=True)
def as_root() -> None:
    if os.getuid() != 0:
        missing("root (to switch users)")


#: Writes the credential lines of the process that runs it (the ``exec`` keeps it the same).
SHOW_IDS = "exec grep -E '^(Uid|Gid|Groups):' /proc/self/status"


class MadeUser:
    """A user made for one test: primary group ``primary``, also a member of ``extra``; a
    third group ``other`` lists it not."""

    def __init__(self, suffix: str) -> None:
        self.name = f"corral-t{suffix}"
        self.groups = {role: f"corral-{role[0]}{suffix}" for role in ("primary", "extra", "other")}
        for group in self.groups.values():
            subprocess.run(["groupadd", group], check=True)
        subprocess.run(
            ["useradd", "-M", "-N", "-s", "/bin/sh", "-g", self.groups["primary"],
             "-G", self.groups["extra"], self.name],
            check=True,
        )  # fmt: skip
        self.uid = int(_id("-u", self.name))
        self.gid = {role: _group_id(group) for role, group in self.groups.items()}

    def remove(self) -> None:
        subprocess.run(["userdel", self.name], check=True)
        for group in self.groups.values():
            subprocess.run(["groupdel", group], check=True)


def _id(flag: str, user: str) -> str:
    return subprocess.run(["id", flag, user], capture_output=True, text=True, check=True).stdout


def _group_id(name: str) -> int:
    line = subprocess.run(["getent", "group", name], capture_output=True, text=True, check=True)
    return int(line.stdout.split(":")[2])


@pytest.fixture
def user(corral: Corral) -> Iterator[MadeUser]:
    made = MadeUser(os.urandom(3).hex())
    try:
        yield made
    finally:
        corral.down()  # its processes run as the user, and userdel refuses while they do
        made.remove()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may write in (pytest's own tmp dirs are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="corral-users-"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ids(text: str) -> dict[str, list[str]]:
    """The Uid, Gid and Groups lines of a /proc/PID/status text, split into their fields."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("Uid", "Gid", "Groups"):
            fields[key] = value.split()
    assert set(fields) == {"Uid", "Gid", "Groups"}, text
    return fields


def expected(uid: int, gid: int, groups: set[int]) -> dict[str, list[str]]:
    """Real, effective, saved and filesystem ids all the same; groups sorted as the kernel
    lists them."""
    return {
        "Uid": [str(uid)] * 4,
        "Gid": [str(gid)] * 4,
        "Groups": [str(g) for g in sorted(groups)],
    }


def service(name: str, user: MadeUser, shared: Path, group: str | None) -> str:
    """A service whose pre-start hook and exec probe write their ids into ``shared``."""
    group_line = f'group = "{group}"' if group else ""
    return f"""
        [service.{name}]
        exec = ["sleep", "600"]
        user = "{user.name}"
        {group_line}
        pre_start = "{SHOW_IDS} > {shared}/{name}.pre_start"
        ready = {{ exec = "{SHOW_IDS} > {shared}/{name}.probe" }}
        actions = {{ ids = "{SHOW_IDS}" }}
    """


@pytest.mark.parametrize("spawner_fds", [None, "0"], ids=["in-place", "spawner-thread"])
def test_main_hook_action_and_probe_take_the_users_ids_and_only_its_groups(
    corral: Corral, user: MadeUser, shared_dir: Path, spawner_fds: str | None
) -> None:
    corral.write(
        service("plain", user, shared_dir, None)
        + service("grouped", user, shared_dir, user.groups["other"])
    )
    corral.up(env=None if spawner_fds is None else {"CORRAL_SPAWNER_FDS": spawner_fds})
    gid = user.gid
    wants = {
        # The user's own primary group and the group that lists it; never root's gid 0.
        "plain": expected(user.uid, gid["primary"], {gid["primary"], gid["extra"]}),
        # ``group`` replaces the primary group; the user's supplementary groups stay.
        "grouped": expected(user.uid, gid["other"], {gid["other"], gid["extra"]}),
    }
    seen, wanted = {}, {}
    for name, want in wants.items():
        pid = corral.wait_state(name, "running")["pid"]
        with open(f"/proc/{pid}/status") as status:
            seen[name, "main"] = ids(status.read())
        for process in ("pre_start", "probe"):
            written = shared_dir / f"{name}.{process}"
            wait_until(lambda w=written: w.exists() and w.read_text(), 5, written.name)
            seen[name, process] = ids(written.read_text())
        seen[name, "action"] = ids(corral.ok("action", name, "ids"))
        wanted.update(
            {(name, process): want for process in ("main", "pre_start", "probe", "action")}
        )
    assert seen == wanted
