"""The unknown terms of several questions classified in one model call (issue 52: the class list, the bulk of the
prompt, paid once per batch instead of once per question). Pure asyncio, no broker.

Each gap's handler hands its question's terms in (`Batcher.classify`) and waits for their answers. The first
question of a batch waits for others until none came for MOE_GAP_BATCH_WAIT_S (each question that joins starts the
wait again: a burst of requests a few seconds long shares one call, where a wait from the first question split it,
issue 52), or until the batch holds MOE_GAP_BATCH_TERMS terms (which bounds the wait), then makes the one call in
its own run (so the call is recorded with that run's messages) and hands every question its own answers. Batches
are kept apart per key (the tenant and the class list): one tenant's questions are never in another's prompt.
Nothing is acknowledged before its handler has its answer: a process that stops with a batch in flight has its
records redelivered, and a call that fails fails every question of the batch the same way (each gap stays open with
the error and is retried by the heal run). A question whose batch's caller stopped before it answered asks alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field


@dataclass
class Question:
    """One gap's terms (its own first, then its question's other new terms) and the question they were seen in."""

    terms: list[str]
    context: str
    answers: asyncio.Future[Reply] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True)
class Reply:
    """A call's answers: term as written -> its classification (the model's JSON; a term left out was not
    answered), and the model's whole reply."""

    answers: dict[str, str]
    raw: str

    def of(self, question: Question) -> Reply:
        return Reply({t: self.answers[t] for t in question.terms if t in self.answers}, self.raw)


# Classifies the terms of the questions in one call; raises when the call failed.
Ask = Callable[[list[Question]], Awaitable[Reply]]


class CallerStopped(Exception):
    """The batch's caller stopped before the call answered (cancelled): its other questions ask alone."""


@dataclass
class _Batch:
    questions: list[Question] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)
    last: float = field(default_factory=lambda: asyncio.get_running_loop().time())  # when a question last joined

    def size(self) -> int:
        return sum(len(q.terms) for q in self.questions)


class Batcher:
    def __init__(self, max_terms: int, wait_s: float) -> None:
        self.max_terms = max_terms
        self.wait_s = wait_s
        self.open: dict[Hashable, _Batch] = {}

    async def classify(self, key: Hashable, terms: list[str], context: str, ask: Ask) -> Reply:
        """The answers to `terms` (seen in `context`), asked with the other questions of the same key that come
        within the wait (by the `ask` of the batch's first question); raises what the call raised."""
        question = Question(terms, context)
        if self.wait_s <= 0:
            return await ask([question])
        batch = self.open.get(key)
        if batch is not None and batch.size() + len(terms) > self.max_terms:
            batch.full.set()  # no room: that batch goes now, this question starts the next
            batch = None
        if batch is not None:
            batch.questions.append(question)
            batch.last = asyncio.get_running_loop().time()
            if batch.size() >= self.max_terms:
                batch.full.set()
            try:
                return await question.answers
            except CallerStopped:
                return await ask([question])
        batch = self.open[key] = _Batch([question])
        if batch.size() >= self.max_terms:
            batch.full.set()
        return await self._call(key, batch, ask)

    async def _call(self, key: Hashable, batch: _Batch, ask: Ask) -> Reply:
        """Wait for the batch to fill (or for no question to join for the wait), then ask for all of it and hand out
        the answers."""
        try:
            try:
                loop = asyncio.get_running_loop()
                while not batch.full.is_set() and (quiet := batch.last + self.wait_s - loop.time()) > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(batch.full.wait(), quiet)
            finally:  # closed, whatever happens: no later question joins a batch that will not be asked
                if self.open.get(key) is batch:
                    del self.open[key]
            answers = await ask(batch.questions)
        except Exception as exc:  # the call failed: every question of the batch fails with it
            for other in batch.questions[1:]:
                _settle(other, exc)
            raise
        except BaseException:  # cancelled (a stop): the others were not answered, they ask alone
            for other in batch.questions[1:]:
                _settle(other, CallerStopped())
            raise
        for other in batch.questions[1:]:
            _settle(other, answers)
        return answers.of(batch.questions[0])


def _settle(question: Question, outcome: Reply | BaseException) -> None:
    if question.answers.done():
        return
    if isinstance(outcome, BaseException):
        question.answers.set_exception(outcome)
    else:
        question.answers.set_result(outcome.of(question))
