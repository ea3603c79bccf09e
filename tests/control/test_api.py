"""The Python client's pure parts: what each method sends (checked by the daemon's own request
decoder), how replies become records and errors, and what ``import corral`` costs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import corral
from corral.control import calls
from corral.control.client import unwrap
from corral.control.protocol import StatusRow, decode_request
from corral.control.records import Emitted, Event, LogLine, Outcome, Status
from corral.control.version import PROTOCOL_VERSION
from corral.errors import DaemonUnreachable, NoSuchService, OperationFailed, UsageError

ROW: dict[str, Any] = {
    "name": "getty", "instance": "tty1", "goal": "start", "state": "running", "pid": 42,
    "ready": True, "restarts": 2, "exit_status": None, "exit_signal": "KILL", "since": 1.5,
    "stale": False, "description": "a login", "error": None, "status_text": "up", "done": False,
}  # fmt: skip


def sent(call: calls.Call[Any] | calls.Subscription[Any]) -> dict[str, Any]:
    """The request line the client writes for ``call``, decoded as the daemon decodes it."""
    line = json.dumps({"cmd": call.cmd, "v": PROTOCOL_VERSION, **call.args}).encode() + b"\n"
    request = decode_request(line)
    return {"cmd": request.cmd, **request.args}


def test_every_field_of_a_status_row_is_an_attribute_of_the_status_record() -> None:
    assert set(StatusRow.__struct_fields__) <= set(Status.__dataclass_fields__)


def test_a_status_record_has_the_json_keys_as_attributes_and_keeps_unknown_ones() -> None:
    status = Status.from_json({**ROW, "cgroup": "/x"})
    assert {key: getattr(status, key) for key in ROW} == ROW
    assert status.extra == {"cgroup": "/x"}
    assert status.address == "getty:tty1"
    assert status.as_dict() == {**Status.from_json(ROW).as_dict(), "cgroup": "/x"}


def test_records_are_immutable() -> None:
    status = Status.from_json(ROW)
    with pytest.raises(AttributeError):
        status.state = "waiting"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (calls.status([]), {"cmd": "status"}),
        (calls.status(["web", "getty", "TTY=tty1", "db:main"]),
         {"cmd": "status", "targets": [{"name": "web"}, {"name": "getty", "env": {"TTY": "tty1"}},
                                       {"name": "db", "instance": "main"}]}),
        (calls.change("start", ["web"], True),
         {"cmd": "start", "targets": [{"name": "web"}], "wait": True}),
        (calls.change("stop", ["all"], False),
         {"cmd": "stop", "targets": [{"name": "all"}], "wait": False}),
        (calls.change("restart", ["a", "b"], True),
         {"cmd": "restart", "targets": [{"name": "a"}, {"name": "b"}], "wait": True}),
        (calls.wait([], None), {"cmd": "wait", "names": [], "timeout": None}),
        (calls.wait(["web"], 2.5), {"cmd": "wait", "names": ["web"], "timeout": 2.5}),
        (calls.emit("tty-added", {"TTY": "tty1"}),
         {"cmd": "emit", "event": "tty-added", "env": {"TTY": "tty1"}, "wait": True}),
        (calls.logs([], None), {"cmd": "logs", "targets": [], "lines": None}),
        (calls.logs(["web"], 5), {"cmd": "logs", "targets": [{"name": "web"}], "lines": 5}),
        (calls.follow_logs(["web"], 0),
         {"cmd": "logs", "targets": [{"name": "web"}], "lines": 0, "follow": True}),
        (calls.events(0), {"cmd": "events", "lines": 0, "follow": True}),
    ],
)  # fmt: skip
def test_each_method_sends_a_request_the_daemon_accepts(
    call: calls.Call[Any] | calls.Subscription[Any], expected: dict[str, Any]
) -> None:
    assert sent(call) == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: calls.change("start", [], True),
        lambda: calls.change("stop", ["TTY=tty1"], True),
        lambda: calls.status([":x"]),
    ],
)
def test_addresses_the_cli_would_refuse_are_usage_errors(make: Any) -> None:
    with pytest.raises(UsageError):
        make()


def test_replies_become_records() -> None:
    outcome = {"name": "web", "instance": "", "state": "running", "pid": 7, "done": False}
    assert calls.status([]).parse([ROW]) == [Status.from_json(ROW)]
    assert calls.change("start", ["web"], True).parse([outcome]) == [Outcome(**outcome)]
    assert calls.emit("e", {}).parse({"started": [outcome], "stopped": []}) == Emitted(
        started=[Outcome(**outcome)], stopped=[]
    )
    event = {"time": 3.0, "name": "started", "env": {"JOB": "web", "INSTANCE": ""}}
    assert calls.events(0).parse(event) == Event(**event)
    line = {"time": 1.0, "service": "web", "instance": "", "process": "main", "text": "hi"}
    assert calls.logs([], 10).parse([line]) == [LogLine(**line)]


@pytest.mark.parametrize(
    ("code", "error"),
    [(1, OperationFailed), (2, UsageError), (3, NoSuchService), (4, DaemonUnreachable),
     (9, OperationFailed)],
)  # fmt: skip
def test_error_replies_raise_corrals_own_family(code: int, error: type[Exception]) -> None:
    with pytest.raises(error, match="it says why"):
        unwrap({"ok": False, "error": {"code": code, "message": "it says why"}})


def test_the_public_names_are_all_there_sorted_and_each_loads() -> None:
    assert corral.__all__ == sorted(corral.__all__)
    for name in corral.__all__:
        assert getattr(corral, name) is not None
    assert corral.Client.__module__ == "corral.control.api"
    assert corral.AsyncClient.__module__ == "corral.control.aio"
    with pytest.raises(AttributeError):
        _ = corral.Nope  # type: ignore[attr-defined]


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``, beyond its start."""
    probe = (
        "import sys; before = set(sys.modules); " + code + "; "
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout  # fmt: skip
    return set(out.split())


def test_import_corral_loads_nothing_else() -> None:
    assert _loaded_after("import corral") == {"corral"}


def test_the_client_loads_neither_msgspec_nor_asyncio_nor_textual() -> None:
    loaded = _loaded_after("import corral; corral.Client; corral.Status; corral.CorralError")
    heavy = {m for m in loaded if m.split(".")[0] in {"msgspec", "asyncio", "textual", "rich"}}
    assert heavy == set()
    assert "corral.control.aio" not in loaded


def test_the_package_ships_its_type_marker() -> None:
    from importlib.resources import files

    assert files("corral").joinpath("py.typed").is_file()
