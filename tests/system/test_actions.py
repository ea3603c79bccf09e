"""Actions calling actions: the call chain is of (service, action) pairs, so only a call of a
pair already on the chain is refused; another action of the same service goes through."""

from __future__ import annotations

import sys

from tests.system.conftest import Corral


def test_another_action_of_a_service_on_the_chain_is_not_a_cycle(corral: Corral) -> None:
    cli = f"{sys.executable} -m corral"
    corral.write(
        f"""
        [service.a]
        exec = ["sleep", "600"]
        actions = {{ outer = "echo a-outer; {cli} action b mid", inner = "echo a-inner" }}

        [service.b]
        exec = ["sleep", "600"]
        actions = {{ mid = "echo b-mid; {cli} action a inner" }}
        """
    )
    corral.up()
    corral.wait_state("a", "running")
    corral.wait_state("b", "running")
    assert corral.ok("action", "a", "outer") == "a-outer\nb-mid\na-inner\n"


def test_the_same_pair_again_is_refused_with_the_whole_chain(corral: Corral) -> None:
    cli = f"{sys.executable} -m corral"
    corral.write(
        f"""
        [service.a]
        exec = ["sleep", "600"]
        actions = {{ outer = "{cli} action b mid" }}

        [service.b]
        exec = ["sleep", "600"]
        actions = {{ mid = "{cli} action a outer" }}
        """
    )
    corral.up()
    corral.wait_state("a", "running")
    result = corral.run("action", "a", "outer")
    assert result.returncode == 1
    assert "action call cycle refused: a/outer -> b/mid -> a/outer" in result.stdout
