"""gap_healer.batch: the terms of several questions in one classification call, bounded by a size and a wait; a
failing call fails every question of its batch, a stopped caller leaves the others to ask alone."""

from __future__ import annotations

import asyncio

import pytest

from gap_healer.batch import Batcher, Question, Reply

pytestmark = pytest.mark.unit


class Model:
    """Answers each term with its name upper-cased, and keeps every call's questions."""

    def __init__(self, fail: Exception | None = None, hold: asyncio.Event | None = None) -> None:
        self.calls: list[list[list[str]]] = []
        self.fail = fail
        self.hold = hold

    async def __call__(self, questions: list[Question]) -> Reply:
        self.calls.append([q.terms for q in questions])
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        return Reply({t: t.upper() for q in questions for t in q.terms}, "raw")


async def test_questions_within_the_wait_share_one_call_each_with_its_own_answers() -> None:
    model, batcher = Model(), Batcher(max_terms=16, wait_s=0.3)
    got = await asyncio.gather(batcher.classify("t1", ["a", "b"], "a and b?", model),
                               batcher.classify("t1", ["c"], "c?", model),
                               batcher.classify("t2", ["d"], "d?", model))  # another tenant: a call of its own
    assert got[0].answers == {"a": "A", "b": "B"} and got[1].answers == {"c": "C"} and got[2].answers == {"d": "D"}
    assert sorted(model.calls) == [[["a", "b"], ["c"]], [["d"]]]


async def test_a_burst_longer_than_the_wait_shares_one_call_while_questions_keep_coming() -> None:
    """Each question that joins starts the wait again (issue 52: three requests' terms spread over more than the wait
    from the first took two calls, the class list paid twice); the batch goes once none came for the wait."""
    model, batcher = Model(), Batcher(max_terms=16, wait_s=2.0)

    async def later(delay: float, term: str) -> Reply:
        await asyncio.sleep(delay)
        return await batcher.classify("t", [term], f"{term}?", model)

    got = await asyncio.gather(later(0, "a"), later(1.2, "b"), later(2.4, "c"))  # 2.4 s from the first, 1.2 apart
    assert [r.answers for r in got] == [{"a": "A"}, {"b": "B"}, {"c": "C"}]
    assert model.calls == [[["a"], ["b"], ["c"]]]


async def test_a_full_batch_goes_at_once_and_the_question_with_no_room_starts_the_next() -> None:
    model, batcher = Model(), Batcher(max_terms=3, wait_s=30)
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = await asyncio.gather(batcher.classify("t", ["a", "b"], "", model),
                               batcher.classify("t", ["c"], "", model),  # full: goes at once
                               batcher.classify("t", ["d", "e"], "", model),
                               batcher.classify("t", ["f", "g"], "", model),  # no room beside d, e: they go
                               batcher.classify("t", ["h"], "", model))
    assert [r.answers for r in got] == [{"a": "A", "b": "B"}, {"c": "C"}, {"d": "D", "e": "E"},
                                        {"f": "F", "g": "G"}, {"h": "H"}]
    assert model.calls == [[["a", "b"], ["c"]], [["d", "e"]], [["f", "g"], ["h"]]]
    assert loop.time() - started < 10  # no batch waited its 30 s


async def test_a_failing_call_fails_every_question_of_its_batch() -> None:
    model, batcher = Model(fail=RuntimeError("model down")), Batcher(max_terms=16, wait_s=0.1)
    got = await asyncio.gather(batcher.classify("t", ["a"], "", model), batcher.classify("t", ["b"], "", model),
                               return_exceptions=True)
    assert [str(e) for e in got] == ["model down", "model down"] and len(model.calls) == 1


async def test_when_the_caller_stops_the_other_questions_ask_alone() -> None:
    hold = asyncio.Event()
    model, batcher = Model(hold=hold), Batcher(max_terms=16, wait_s=0.05)
    caller = asyncio.ensure_future(batcher.classify("t", ["a"], "", model))
    await asyncio.sleep(0)
    other = asyncio.ensure_future(batcher.classify("t", ["b"], "", model))
    while not model.calls:
        await asyncio.sleep(0.01)
    caller.cancel()  # stopped during the call: its record is redelivered, b is asked again alone
    hold.set()
    assert (await other).answers == {"b": "B"}
    assert model.calls == [[["a"], ["b"]], [["b"]]]


async def test_no_wait_asks_each_question_alone() -> None:
    model, batcher = Model(), Batcher(max_terms=16, wait_s=0)
    await asyncio.gather(batcher.classify("t", ["a"], "", model), batcher.classify("t", ["b"], "", model))
    assert model.calls == [[["a"]], [["b"]]]


async def test_when_the_caller_stops_while_waiting_the_others_ask_alone_at_once() -> None:
    model, batcher = Model(), Batcher(max_terms=16, wait_s=30)
    caller = asyncio.ensure_future(batcher.classify("t", ["a"], "", model))
    await asyncio.sleep(0)
    other = asyncio.ensure_future(batcher.classify("t", ["b"], "", model))
    await asyncio.sleep(0)
    caller.cancel()
    assert (await asyncio.wait_for(other, 5)).answers == {"b": "B"}
    assert model.calls == [[["b"]]] and batcher.open == {}  # the stopped batch is closed: nothing joins it
