"""The D-Bus bridge's parts on their own: signals as text and events, which names a glob
watches, match rules, service files (written for real in a temporary directory). The
reports go to a recording link; the bridge on a real bus is ``tests/system/test_dbus*.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbus_fast import Message, MessageType, Variant

from corral.bridges.dbus_activation import ServiceFiles, file_text, services_dir
from corral.bridges.dbus_bus import SESSION, SYSTEM, bus_address, rule_text
from corral.bridges.dbus_names import Names
from corral.bridges.dbus_signals import Signals, text_of
from tests.bridges.fakes import RecordingLink


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("on battery", "on battery"),
        (7, "7"),
        (0.5, "0.5"),
        (True, "true"),
        (b"/dev/sda\0", "/dev/sda"),
        (b"\xff\x00", "ff00"),
        (["a", "b"], '["a","b"]'),
        ({"Percentage": Variant("d", 12.5)}, '{"Percentage":12.5}'),
    ],
)
def test_a_signal_argument_becomes_text(value: object, text: str) -> None:
    assert text_of(value) == text


def test_a_match_rule_quotes_its_values() -> None:
    assert rule_text("signal", {"member": "Critical", "arg0": "it's"}) == (
        "type='signal',member='Critical',arg0='it'\\''s'"
    )


def test_the_session_bus_where_its_address_is_set_else_the_system_bus() -> None:
    assert bus_address({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/s"}) == ("unix:path=/s", SESSION)
    assert bus_address({"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/y"}) == ("unix:path=/y", SYSTEM)
    assert bus_address({}) == ("unix:path=/run/dbus/system_bus_socket", SYSTEM)


def signal(member: str, sender: str = ":1.5", *args: str) -> Message:
    return Message(message_type=MessageType.SIGNAL, path="/org/example/Power",
                   interface="org.example.Power", member=member, sender=sender,
                   signature="s" * len(args), body=list(args))  # fmt: skip


def test_only_signals_a_rule_matches_are_emitted_in_the_order_positions_match() -> None:
    link = RecordingLink()
    signals = Signals(link, {}.get, lambda unique: [])  # type: ignore[arg-type]
    signals.want([{"interface": "org.example.Power", "member": "Critical"}], [])
    signals.received(signal("Low", ":1.5", "x"))
    signals.received(signal("Critical", ":1.5", "battery", "5"))
    ((kind, (event, env)),) = link.take()
    assert (kind, event) == ("emit", "dbus-signal")
    assert list(env.items()) == [
        ("INTERFACE", "org.example.Power"), ("MEMBER", "Critical"),
        ("OBJECT_PATH", "/org/example/Power"), ("SENDER", ":1.5"), ("ARG0", "battery"),
        ("ARG1", "5"),
    ]  # fmt: skip


def test_a_sender_asked_for_by_name_is_matched_and_named_through_its_owner() -> None:
    link = RecordingLink()
    owners = {"org.example.UPower": ":1.9"}

    def owned_by(unique: str) -> list[str]:
        return [name for name, owner in owners.items() if owner == unique]

    signals = Signals(link, owners.get, owned_by)  # type: ignore[arg-type]
    signals.want([{"sender": "org.example.UPower"}], ["org.example.UPower"])
    signals.received(signal("Changed", ":1.5"))  # another connection: not this rule's
    signals.received(signal("Changed", ":1.9"))
    assert [env["SENDER"] for _, (_, env) in link.take()] == ["org.example.UPower"]


def test_a_glob_watches_well_known_names_and_unique_ones_only_where_it_says_so() -> None:
    names = Names(RecordingLink())  # type: ignore[arg-type]
    names.want(["org.example.Foo", "org.mpris.*", ":1.*"])
    assert names.watches("org.example.Foo") and names.watches("org.mpris.vlc")
    assert names.watches(":1.4") and not names.watches("org.example.Bar")
    names.want(["*"])
    assert not names.watches(":1.4")
    assert names.rules() == {"type='signal',sender='org.freedesktop.DBus',"
                             "path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
                             "member='NameOwnerChanged'"}  # fmt: skip


def test_an_owner_change_is_told_and_a_new_owner_counts_even_over_an_old_one() -> None:
    link = RecordingLink()
    names = Names(link)  # type: ignore[arg-type]
    names.want(["org.example.Foo"])

    def changed(new: str) -> Message:
        return Message(message_type=MessageType.SIGNAL, sender="org.freedesktop.DBus",
                       path="/org/freedesktop/DBus", interface="org.freedesktop.DBus",
                       member="NameOwnerChanged", signature="sss",
                       body=["org.example.Foo", "", new])  # fmt: skip

    for owner in (":1.3", ":1.4", ""):
        names.received(changed(owner))
    state = ("dbus-name", {"NAME": "org.example.Foo"})
    assert link.take() == [("hold", state), ("hold", state), ("release", state)]
    names.lost()
    names.lost()
    assert link.take() == [("replace", [])]  # said once, however often the bus is tried


def test_service_files_are_written_once_and_only_this_corrals_are_removed(tmp_path: Path) -> None:
    directory = tmp_path / "dbus-1" / "services"
    files = ServiceFiles(str(directory), "/run/app/control.sock", SESSION)
    files.write({"org.example.Foo": "foo", "org.example.Bar": "bar"})
    other = ServiceFiles(str(directory), "/run/other/control.sock", SESSION)
    other.write({"org.example.Theirs": "theirs"})
    written = directory / "org.example.Foo.service"
    before = written.stat().st_mtime_ns
    files.write({"org.example.Foo": "foo"})
    assert written.stat().st_mtime_ns == before
    assert sorted(p.name for p in directory.iterdir()) == ["org.example.Foo.service",
                                                           "org.example.Theirs.service"]  # fmt: skip
    files.remove_all()
    assert [p.name for p in directory.iterdir()] == ["org.example.Theirs.service"]


def test_a_system_service_file_names_the_user_that_runs_corral_start() -> None:
    lines = file_text("org.example.Foo", "foo", "/run/corral/control.sock", "root").splitlines()
    assert lines[1:3] == ["[D-BUS Service]", "Name=org.example.Foo"]
    assert lines[3].split()[1:] == ["-m", "corral", "start", "--socket",
                                    "/run/corral/control.sock", "foo"]  # fmt: skip
    assert lines[4:] == ["User=root"]
    assert services_dir(SYSTEM) == "/run/corral/dbus-1/system-services"
    assert services_dir(SESSION, {"XDG_DATA_HOME": "/d"}) == "/d/dbus-1/services"
