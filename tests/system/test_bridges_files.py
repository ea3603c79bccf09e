"""The files bridge, for real: inotify in the test's own temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

from tests.system.conftest import Corral, wait_until


def setup(corral: Corral) -> Path:
    data = corral.root / "data"
    corral.write(
        f"""
        [service.ready]
        exec = ["sleep", "600"]
        while = "path-exists(FILE={data}/ready)"

        [service.import]
        type = "oneshot"
        exec = ["sh", "-c", "echo $$FILE >> {corral.root}/imported"]
        start_on = "path-changed FILE={data}/*.csv"
        """
    )
    return data


def changes(corral: Corral) -> list[str]:
    records = [json.loads(line) for line in corral.ok("events", "--json").splitlines()]
    return [r["env"]["FILE"] for r in records if r["name"] == "path-changed"]


def test_path_exists_holds_while_the_file_exists_even_in_a_directory_made_later(
    corral: Corral,
) -> None:
    data = setup(corral)
    corral.up()
    wait_until(lambda: corral.one("corral-bridge-files")["ready"], 15, "the bridge's report")
    data.mkdir()
    (data / "ready").write_text("")
    first = corral.wait_state("ready", "running")["pid"]
    (data / "ready").unlink()
    corral.wait_state("ready", "waiting")
    (data / "ready.tmp").write_text("")
    (data / "ready.tmp").rename(data / "ready")  # as an editor saves a file
    assert corral.wait_state("ready", "running")["pid"] != first


def test_path_exists_is_true_at_start_for_a_file_that_exists(corral: Corral) -> None:
    data = setup(corral)
    data.mkdir()
    (data / "ready").write_text("")
    corral.up()
    corral.wait_state("ready", "running")


def test_a_burst_of_writes_is_one_path_changed_naming_the_file(corral: Corral) -> None:
    data = setup(corral)
    data.mkdir()
    corral.up()
    wait_until(lambda: corral.one("corral-bridge-files")["ready"], 15, "the bridge's report")
    with open(data / "a.csv", "w") as csv:
        for number in range(50):
            csv.write(f"{number}\n")
            csv.flush()
    (data / "notes.txt").write_text("not a csv")
    wait_until(lambda: changes(corral), 10, "path-changed")
    corral.wait_state("import", "running")  # a oneshot that exited 0: done
    assert changes(corral) == [str(data / "a.csv")]
    assert (corral.root / "imported").read_text() == f"{data / 'a.csv'}\n"


def test_a_reload_changes_what_the_bridge_watches_without_restarting_it(corral: Corral) -> None:
    data = setup(corral)
    data.mkdir()
    corral.up()
    bridge = wait_until(lambda: (r := corral.one("corral-bridge-files"))["ready"] and r, 15,
                        "the bridge's report")  # fmt: skip
    config = (corral.root / "corral.toml").read_text()
    corral.write(config.replace(f"{data}/ready", f"{data}/other"))
    corral.ok("config", "reload")
    (data / "other").write_text("")
    corral.wait_state("ready", "running")
    assert corral.one("corral-bridge-files")["pid"] == bridge["pid"]


def test_a_job_runs_once_per_existing_file_keyed_by_its_path(corral: Corral) -> None:
    """``instance = "${FILE}"`` with ``path-exists(FILE=DIR/*)``: the instance key is the
    file's path, slashes and all; its cgroup directory is the escaped path, one per file."""
    data = corral.root / "in"
    data.mkdir()
    (data / "a.csv").write_text("")
    corral.write(
        f"""
        [service.per_file]
        exec = ["sleep", "600"]
        instance = "${{FILE}}"
        while = "path-exists(FILE={data}/*.csv)"
        """
    )
    corral.up()

    def running() -> list[str]:
        return sorted(r["instance"] for r in corral.status("per_file") if r["state"] == "running")

    wait_until(lambda: running() == [f"{data}/a.csv"], 15, "the instance of a.csv")
    (data / "b.csv").write_text("")
    wait_until(lambda: running() == [f"{data}/a.csv", f"{data}/b.csv"], 10, "b.csv's instance")
    assert corral.ok("status", f"per_file:{data}/b.csv").count("per_file:") == 1
    (data / "a.csv").unlink()
    wait_until(lambda: running() == [f"{data}/b.csv"], 10, "a.csv's instance to go")
