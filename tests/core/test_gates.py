"""Start and stop gates over instance records: when a held instance may go on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.core.gates import start_gate, stop_gate
from corral.core.graph import Graph, Node
from corral.core.records import Instance
from corral.core.states import Goal, State

GRAPH = Graph(
    {
        "db": Node(),
        "cache": Node(),
        "log": Node(),
        "web": Node(requires=("db",), wants=("cache",), after=("log",)),
    }
)

UP = Instance("x", state=State.RUNNING, goal=Goal.START, ready=True)
COMING = Instance("x", state=State.SPAWNED, goal=Goal.START)
STOPPED = Instance("x", state=State.WAITING, goal=Goal.STOP)
FAILED = Instance("x", state=State.FAILED, goal=Goal.STOP, error="main exited with status 3")


def gate(**world: Instance) -> bool | str | None:
    return start_gate("web", GRAPH, lambda name: world.get(name, STOPPED))


def test_start_waits_for_requirements_and_wants_on_their_way_up() -> None:
    assert gate(db=UP, cache=UP, log=UP) is True
    assert gate(db=COMING, cache=UP) is None
    assert gate(db=UP, cache=COMING) is None
    assert gate(db=UP, log=COMING) is None  # after: only orders what is starting anyway
    assert gate(db=UP, log=STOPPED, cache=STOPPED) is True  # neither is pulled in


def test_start_fails_on_a_requirement_that_gave_up_but_not_on_a_want() -> None:
    assert gate(db=FAILED) == "requirement db failed: main exited with status 3"
    assert gate(db=STOPPED) == "requirement db is stopped"
    assert gate(db=UP, cache=FAILED) is True
    restarting = Instance("db", state=State.RUNNING, goal=Goal.START, ready=True, restarting=True)
    assert gate(db=restarting) is None


# The rule of docs/states.md, stated here rather than read from the code under test: a
# dependent still uses what it needs while any of its processes may run, that is from
# ``pre-start`` (its first hook) to ``post-stop`` (its last). In ``starting`` it is held
# before running anything, and ``waiting``/``failed`` are at rest with nothing running.
NOTHING_RUNS = {State.WAITING, State.FAILED, State.STARTING}
MAY_RUN = {
    State.PRE_START,
    State.SPAWNED,
    State.POST_START,
    State.RUNNING,
    State.PRE_STOP,
    State.STOPPING,
    State.KILLED,
    State.POST_STOP,
}


def test_every_state_is_classified_once() -> None:
    """A new state must be placed on one side of the rule before the property means much."""
    assert set(State) == NOTHING_RUNS | MAY_RUN and not NOTHING_RUNS & MAY_RUN


instances = st.builds(
    Instance,
    job=st.just("web"),
    state=st.sampled_from(list(State)),
    goal=st.sampled_from(list(Goal)),
    restarting=st.booleans(),
)


@given(instances)
def test_stop_waits_exactly_for_dependents_going_down_and_not_yet_down(web: Instance) -> None:
    opened = stop_gate("db", GRAPH, lambda name: web if name == "web" else None)
    going_down = web.goal is Goal.STOP or web.restarting  # a stop, or a restart's first half
    assert opened == (not going_down or web.state in NOTHING_RUNS)
    # Nothing depends on web: its stop never waits.
    assert stop_gate("web", GRAPH, lambda name: web)
