"""Starting one process of an instance: its environment, its output pipe, its cgroup.

Every process corral runs for an instance (main, hooks, actions, exec probes) starts here,
so each gets the same environment (corral's, the definition's, what its start carried, and
``CORRAL_JOB``/``CORRAL_INSTANCE``/``CORRAL_SOCKET``) and lands in the same cgroup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from corral.core.definition import Command
from corral.daemon.cgroups import Cgroups
from corral.daemon.fdpass import Handed
from corral.daemon.runtime import Runtime, label
from corral.daemon.spawn import Child, SpawnError, process_env, spawn


class Launcher:
    def __init__(
        self, base_env: Mapping[str, str], cgroups: Cgroups | None, wakeup_fd: int | None
    ) -> None:
        self._base_env = dict(base_env)
        self.cgroups = cgroups
        self._wakeup_fd = wakeup_fd  # the signal wakeup fd, which a ready_fd may displace

    @property
    def socket(self) -> str:
        return self._base_env.get("CORRAL_SOCKET", "")

    def corral_env(self, rt: Runtime) -> dict[str, str]:
        """What corral adds to an instance's processes: its start's variables and marks."""
        env = dict(rt.env)
        env["CORRAL_JOB"] = rt.inst.job
        env["CORRAL_INSTANCE"] = rt.inst.key
        if rt.main_pid is not None:
            env["MAINPID"] = str(rt.main_pid)
        return env

    def start(
        self,
        rt: Runtime,
        command: Command,
        extra_env: Mapping[str, str],
        *,
        main_script: bool = False,
        extra_fd: tuple[int, int] | None = None,
        handed: Handed | None = None,
    ) -> tuple[Child, int]:
        """Fork and exec one process of an instance (``handed``: what a main process gets
        beyond its command, ``handover.py``). Returns the child and the read end of its
        output pipe; raises SpawnError."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            env = process_env(rt.definition, self._base_env, extra_env)
            child = spawn(
                rt.definition,
                command,
                env,
                write_end,
                main_script=main_script,
                extra_fd=extra_fd,
                wakeup_fd=self._wakeup_fd,
                handed=handed,
            )
        except SpawnError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return child, read_end

    def place(self, rt: Runtime, pid: int) -> None:
        """Into the instance's cgroup, where there are cgroups."""
        if self.cgroups is not None:
            self.cgroups.place(pid, label(rt))
