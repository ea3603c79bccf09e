"""The seed's state operators with a real daemon: process-less state jobs (``net``, one
instance per interface, like DESIGN.md's ``tty``) driven by ``corral emit``, and ``while``
jobs over them with a list, ``all`` and ``K of``, whose real processes start and stop as
instances come and go."""

from __future__ import annotations

from tests.system.conftest import Corral, pid_alive, wait_until

#: The states: ``net:IF`` holds from ``net-up IF=...`` until ``net-down IF=...``.
NET = """
[service.net]
start_on = "net-up IF=*"
stop_on = "net-down IF=$IF"
instance = "${IF}"
"""


def running(corral: Corral, name: str) -> list[str]:
    return sorted(r["instance"] for r in corral.status(name) if r["state"] == "running")


def up(corral: Corral, *interfaces: str) -> None:
    for interface in interfaces:
        corral.ok("emit", "net-up", f"IF={interface}")


def down(corral: Corral, *interfaces: str) -> None:
    for interface in interfaces:
        corral.ok("emit", "net-down", f"IF={interface}")


def test_two_of_a_list_starts_and_stops_as_instances_come_and_go(corral: Corral) -> None:
    corral.write(NET + '[service.quorum]\nexec = ["sleep", "600"]\n'
                 'while = "2 of net(IF=a|b|c)"\n')  # fmt: skip
    corral.up()
    # A ``while`` decides within the emit that changed the state: the goal is set by the
    # time the emit returns, so "still stopped" is asserted at once, without waiting.
    up(corral, "a", "d")  # one listed interface, and one not listed
    assert running(corral, "net") == ["a", "d"]
    assert corral.one("quorum")["goal"] == "stop"
    up(corral, "b")
    first = corral.wait_state("quorum", "running")["pid"]
    up(corral, "c")
    down(corral, "a")  # b and c still make two
    assert corral.one("quorum")["goal"] == "start" and pid_alive(first)
    down(corral, "b")  # only c: stopped
    corral.wait_state("quorum", "waiting")
    wait_until(lambda: not pid_alive(first), what="quorum's process to end")
    up(corral, "a")  # a and c: started again
    second = corral.wait_state("quorum", "running")["pid"]
    assert second != first


def test_all_of_a_list_holds_only_while_every_value_does(corral: Corral) -> None:
    corral.write(NET + '[service.both]\nexec = ["sleep", "600"]\n'
                 'while = "all net(IF=a|b)"\n')  # fmt: skip
    corral.up()
    up(corral, "a", "c")
    assert corral.one("both")["goal"] == "stop"
    up(corral, "b")
    pid = corral.wait_state("both", "running")["pid"]
    down(corral, "a")
    corral.wait_state("both", "waiting")
    wait_until(lambda: not pid_alive(pid), what="both's process to end")


def test_a_list_runs_one_instance_per_listed_value_that_holds(corral: Corral) -> None:
    corral.write(NET + '[service.dhcp]\nexec = ["sleep", "600"]\ninstance = "${IF}"\n'
                 'while = "net(IF=a|b)"\n')  # fmt: skip
    corral.up()
    up(corral, "a", "c")
    wait_until(lambda: running(corral, "dhcp") == ["a"], what="dhcp:a alone")
    up(corral, "b")
    wait_until(lambda: running(corral, "dhcp") == ["a", "b"], what="dhcp:a and dhcp:b")
    down(corral, "a")
    wait_until(lambda: running(corral, "dhcp") == ["b"], what="dhcp:a to go")


def test_none_of_a_list_holds_while_another_value_does(corral: Corral) -> None:
    corral.write(NET + '[service.other]\nexec = ["sleep", "600"]\n'
                 'while = "net(IF!=lo|docker0)"\n')  # fmt: skip
    corral.up()
    up(corral, "lo", "docker0")
    assert corral.one("other")["goal"] == "stop"
    up(corral, "eth0")
    corral.wait_state("other", "running")
    down(corral, "eth0")
    corral.wait_state("other", "waiting")


def test_operators_combine_with_and_or_and_parentheses(corral: Corral) -> None:
    corral.write(NET + '[service.db]\nexec = ["sleep", "600"]\nautostart = false\n'
                 '[service.app]\nexec = ["sleep", "600"]\n'
                 'while = "db and (2 of net(IF=a|b|c) or all net(IF=x|y))"\n')  # fmt: skip
    corral.up()
    up(corral, "a", "b")
    assert corral.one("app")["goal"] == "stop"  # no db yet
    corral.ok("start", "db")
    corral.wait_state("app", "running")
    down(corral, "a")
    corral.wait_state("app", "waiting")
    up(corral, "x", "y")  # the other branch
    corral.wait_state("app", "running")


def test_a_value_may_come_from_the_jobs_own_environment(corral: Corral) -> None:
    corral.write(NET + '[service.uplink]\nexec = ["sleep", "600"]\n'
                 'env = { PRIMARY = "a", BACKUP = "b" }\n'
                 'while = "net(IF=$PRIMARY|$BACKUP)"\n')  # fmt: skip
    corral.up()
    up(corral, "c")
    assert corral.one("uplink")["goal"] == "stop"
    up(corral, "b")
    corral.wait_state("uplink", "running", timeout=5)


def test_config_check_names_file_service_key_and_column_of_a_bad_operator(
    corral: Corral,
) -> None:
    path = corral.write(
        NET
        + '[service.quorum]\nexec = ["sleep", "600"]\nwhile = "4 of net(IF=a|b|c)"\n'
        + '[service.pair]\nexec = ["sleep", "600"]\nwhile = "net and all net(IF=a||b)"\n'
        + '[service.fine]\nexec = ["sleep", "600"]\nwhile = "2 of net(IF=a|b|c)"\n'
    )
    result = corral.run("config", "check")
    assert result.returncode == 1
    lines = [line.removeprefix("corral: ") for line in result.stderr.splitlines()]
    assert lines == [
        f'{path}:8: service.quorum.while: cannot read the condition "4 of net(IF=a|b|c)" '
        "at column 1: 4 of a list of 3 values can never hold",
        f'{path}:11: service.pair.while: cannot read the condition "net and all '
        "net(IF=a||b)\" at column 22: an empty value in the list 'a||b'",
    ], result.stderr


def test_config_check_knows_a_list_binds_its_key_and_a_count_binds_nothing(
    corral: Corral,
) -> None:
    path = corral.write(
        NET
        + '[service.each]\nexec = ["sleep", "600"]\ninstance = "${IF}"\n'
        + 'while = "net(IF=a|b)"\n'
        + '[service.counted]\nexec = ["sleep", "600"]\ninstance = "${IF}"\n'
        + 'while = "2 of net(IF=a|b|c)"\n'
    )
    result = corral.run("config", "check")
    assert result.returncode == 1
    lines = [line.removeprefix("corral: ") for line in result.stderr.splitlines()]
    assert lines == [
        f"{path}:12: service.counted.instance: the instance key uses $IF, which no while "
        "binds: nothing would give it a value"
    ], result.stderr
