"""The executor's workers (``Executor._run_all``): each takes the next action when done with one,
at most ``parallelism`` run at once, the results come back in the actions' order, and an exception
no action caught still reaches the caller."""
from __future__ import annotations

import threading

import pytest

from reconciler.apply.executor import Executor


def executor(parallelism: int) -> Executor:
    return Executor(ctx=None, backend=None, parallelism=parallelism)  # type: ignore[arg-type]


def test_results_keep_the_actions_order_when_they_finish_out_of_it(monkeypatch):
    last_done = threading.Event()
    together = threading.Barrier(4)  # the first four run at once, or this times out
    running, most = [0], [0]
    lock = threading.Lock()

    def run_one(action: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if action < 4:
            together.wait(10)
        if action == 0:  # the first finishes last: it waits for the last one
            assert last_done.wait(10)
        if action == 49:
            last_done.set()
        with lock:
            running[0] -= 1
        return action * 10

    ex = executor(4)
    monkeypatch.setattr(ex, "_run_one", run_one)
    assert ex._run_all(list(range(50))) == [i * 10 for i in range(50)]
    assert most[0] == 4


def test_an_exception_no_action_caught_is_raised_and_the_other_actions_still_run(monkeypatch):
    ran: list[int] = []

    def run_one(action: int) -> int:
        if action == 3:
            raise RuntimeError("a bug")
        ran.append(action)
        return action

    ex = executor(2)
    monkeypatch.setattr(ex, "_run_one", run_one)
    with pytest.raises(RuntimeError, match="a bug"):
        ex._run_all(list(range(10)))
    assert sorted(ran) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_fewer_actions_than_workers(monkeypatch):
    ex = executor(16)
    monkeypatch.setattr(ex, "_run_one", lambda a: a)
    assert ex._run_all(["a"]) == ["a"] and ex._run_all([]) == []
