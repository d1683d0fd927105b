"""Exact repeats: the semantic cache's answers, also kept in Redis under the normalised question.

The semantic cache (planner) finds an answer by meaning: an embedding, a Chroma query and the guards,
two Kafka hops away from the client. A question asked again word for word (after normalisation: case,
spacing, contractions, outer punctuation) needs none of that. When the planner stores an answer in the
semantic cache it also writes it here; the gateway looks here before it publishes a request and answers
an exact repeat itself. Same scope (tenant, mode, system prompt, expert template and, for a tenant's own
template, the digest of its models; a structured request's response_format), same expiry; a flagged entry
(rating 1-2) is removed here when the planner flags it in Chroma.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from moe_core.contracts import Answer, ChatRequest, ModelUse, Source, Usage

_SPACE = re.compile(r"\s+")
_CONTRACTIONS = {
    "can't": "can not", "cannot": "can not", "won't": "will not", "shan't": "shall not", "n't": " not",
    "what's": "what is", "how's": "how is", "where's": "where is", "who's": "who is", "it's": "it is",
    "that's": "that is", "there's": "there is", "i'm": "i am", "let's": "let us",
}


def plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")


# each contraction's substitution, compiled once, in _CONTRACTIONS' order
_EXPANSIONS = tuple((re.compile(r"(\w)n't\b"), r"\1" + long) if short.startswith("n'")
                    else (re.compile(rf"\b{re.escape(short)}"), long) for short, long in _CONTRACTIONS.items())
MEMO_CHARS = 2000  # a question up to this long is remembered: one request's steps normalise it several times


def normalise(question: str) -> str:
    """Lower case, unicode NFKC, contractions expanded, whitespace collapsed, outer punctuation dropped."""
    return _remembered(question) if len(question) <= MEMO_CHARS else _normalised(question)


@functools.lru_cache(maxsize=256)  # at most ~256 x 2 x MEMO_CHARS characters
def _remembered(question: str) -> str:
    return _normalised(question)


def _normalised(question: str) -> str:
    text = plain(question).lower()
    text = _SPACE.sub(" ", text).strip()
    for pattern, long in _EXPANSIONS:
        text = pattern.sub(long, text)
    return text.strip(" \t\"'`.,;:!?")


def cache_scope(request: ChatRequest) -> str | None:
    """The scope of a cacheable request, or None: only one-turn questions without tools are cached
    (an answer that depends on earlier turns is not an answer to the question alone). A replay (replay rerun)
    is never cached: it asks what the fleet answers today."""
    if request.replay_of:
        return None
    turns = [m for m in request.messages if m.role not in ("system", "developer")]
    if len(turns) != 1 or turns[0].role != "user" or request.tools:
        return None
    system = "\n".join(m.content for m in request.messages if m.role in ("system", "developer"))
    parts = [request.tenant_id, request.mode, system]
    if request.template:  # another template's models give another answer (no key changes without one)
        parts.append(f"template:{request.template}")
    if request.template_models is not None:  # a tenant's own: its models (an edited template is another one)
        parts.append(f"template-models={request.template_models.digest()}")
    fmt = request.params.response_format
    if fmt is not None:  # a structured answer is no answer to a prose request, nor another format's (no key changes
        parts.append(f"format={fmt.model_dump_json()}")  # without one)
    raw = "\x00".join(parts)
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def question_key(prefix: str, scope: str, question: str) -> str:
    """A Redis key for one question within a scope: the same normalised words give the same key."""
    digest = hashlib.sha256(f"{scope}\x00{normalise(question)}".encode()).hexdigest()[:32]
    return f"{prefix}:{digest}"


class ExactEntry(BaseModel):
    cache_key: str = Field(description="The semantic-cache entry (Chroma id) this answer is")
    question: str
    answer: str
    experts_used: list[str] = Field(default_factory=list)
    models_used: list[ModelUse] = Field(default_factory=list)
    completion_tokens: int | None = Field(default=None, description="As CacheEntry.completion_tokens")


def answer_tokens(entry: ExactEntry) -> int:
    """The tokens the cached answer took: its model calls' completion tokens (for a composed answer the experts'
    too, so never fewer than the answer's own), or for an entry without the count its characters / 4."""
    if entry.completion_tokens is not None:
        return entry.completion_tokens
    return -(-len(entry.answer) // 4)


def fits(request: ChatRequest, entry: ExactEntry) -> bool:
    """Whether a cached answer is one this request may get: not longer than its max_tokens, and without any of its
    stop sequences (a model would have stopped there). Otherwise the request is answered afresh, where both
    apply."""
    params = request.params
    if params.max_tokens is not None and answer_tokens(entry) > params.max_tokens:
        return False
    return not any(stop and stop in entry.answer for stop in params.stop or [])


def cached_answer(request: ChatRequest, entry: ExactEntry, question: str) -> Answer:
    """The Answer of a cache hit: no model call, no tokens."""
    return Answer(**request.child_fields(), mode=request.mode, content=entry.answer, finish_reason="stop",
                  usage=Usage(), model_calls=0, experts_used=entry.experts_used, cache_hit=True,
                  sources=[Source(kind="cache", ref=entry.cache_key, title=entry.question[:200])],
                  cache_key=entry.cache_key, models_used=entry.models_used, question=question)


class ExactAnswers:
    """Redis `cache:exact:<namespace>:<hash(scope, normalised question)>` -> ExactEntry (JSON), with a TTL."""

    def __init__(self, redis: Redis, namespace: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = f"cache:exact:{namespace}"
        self.ttl_s = ttl_s

    def key(self, scope: str, question: str) -> str:
        return question_key(self.prefix, scope, question)

    async def put(self, scope: str, entry: ExactEntry) -> None:
        await self.redis.set(self.key(scope, entry.question), entry.model_dump_json(), ex=max(int(self.ttl_s), 1))

    def put_in(self, pipe: Pipeline, scope: str, entry: ExactEntry) -> None:
        """`put` as one command of the caller's pipeline (no round trip of its own)."""
        pipe.set(self.key(scope, entry.question), entry.model_dump_json(), ex=max(int(self.ttl_s), 1))

    async def drop(self, scope: str, question: str) -> None:
        await self.redis.delete(self.key(scope, question))

    def lookup(self, request: ChatRequest) -> tuple[str, str] | None:
        """Where an exact repeat's answer would be, (Redis key, question), without a round trip; None: the
        request is not cacheable (the edge reads the key in the limits' round trip, moe_core.access.edge_hit)."""
        scope = cache_scope(request)
        if scope is None:
            return None
        question = next(m.content.strip() for m in request.messages if m.role == "user")
        return self.key(scope, question), question

    async def answer(self, request: ChatRequest) -> Answer | None:
        """The cached answer of an exact repeat of a cacheable request, or None."""
        found = self.lookup(request)
        if found is None:
            return None
        raw = await self.redis.get(found[0])
        return None if raw is None else answer_of(request, raw, found[1])


def answer_of(request: ChatRequest, raw: str | bytes, question: str) -> Answer | None:
    """The Answer of a stored entry (its JSON as read); None: a miss, for a damaged entry or one that does not
    `fit` the request."""
    try:
        entry = ExactEntry.model_validate_json(raw)
    except ValidationError:
        return None
    return cached_answer(request, entry, question) if fits(request, entry) else None
