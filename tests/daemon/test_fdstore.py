"""The fd store on its own, with real fds: what it keeps, dedups, refuses and closes."""

from __future__ import annotations

import os

from corral.daemon.fdstore import FdStore


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_fds_are_kept_in_order_with_their_names_and_an_fd_seen_twice_once() -> None:
    store = FdStore()
    a, b = os.pipe()
    again = os.dup(a)
    assert store.add([a], "x", 16) == []
    assert store.add([b, again], "y", 16) == []  # ``again`` is ``a``'s open file: closed
    assert store.handed() == ([a, b], ["x", "y"]) and not is_open(again)
    store.close()
    assert not is_open(a) and not is_open(b) and len(store) == 0


def test_past_fd_store_max_a_new_fd_is_closed_and_said() -> None:
    store = FdStore()
    r, w = os.pipe()
    assert store.add([r, w], "p", 1) == ["fd store full (fd_store_max = 1): closed an fd named p"]
    assert store.handed() == ([r], ["p"]) and not is_open(w)
    store.close()


def test_removing_a_name_closes_only_its_fds() -> None:
    store = FdStore()
    r, w = os.pipe()
    store.add([r], "keep", 16)
    store.add([w], "drop", 16)
    store.remove("drop")
    assert store.handed() == ([r], ["keep"]) and not is_open(w) and is_open(r)
    store.close()
