"""Pure research logic: which queries to send, numbered sources, the digest and the summary prompt."""

from __future__ import annotations

from moe_core.contracts import Confidence, ResearchTask, Source
from moe_core.runtime.run_versions import prompt_used
from research.searxng import WebHit

MAX_QUERY_CHARS = 400


def queries_for(task: ResearchTask, limit: int) -> list[str]:
    """The task's queries (or its question), trimmed, without repeats, at most `limit`."""
    out: list[str] = []
    for query in task.queries or [task.question]:
        query = " ".join(query.split())[:MAX_QUERY_CHARS]
        if query and query.lower() not in {q.lower() for q in out}:
            out.append(query)
    return out[:limit]


def sources(hits: list[WebHit]) -> list[Source]:
    """Numbered web sources: source n is `[n]` in the digest and the summary."""
    return [Source(kind="web", ref=f"web:{n}", title=hit.title, url=hit.url) for n, hit in enumerate(hits, 1)]


def digest(hits: list[WebHit]) -> str:
    """The hits as numbered blocks: what the judge (and the summariser) read."""
    blocks = []
    for n, hit in enumerate(hits, 1):
        block = f"[{n}] {hit.title}\n{hit.url}"
        blocks.append(f"{block}\n{hit.snippet}" if hit.snippet else block)
    return "\n\n".join(blocks)


def source_list(hits: list[WebHit]) -> str:
    return "\n".join(f"[{n}] {hit.title} — {hit.url}" for n, hit in enumerate(hits, 1))


def content(hits: list[WebHit], summary: str | None) -> str:
    """With a summary: the summary and the numbered source list; without: the digest itself."""
    if not hits:
        return ""
    if summary and summary.strip():
        return f"{summary.strip()}\n\nSources:\n{source_list(hits)}"
    return digest(hits)


def confidence(hits: list[WebHit]) -> Confidence:
    """Web results corroborate, they do not prove: never high; one lonely hit is low."""
    return "medium" if len(hits) >= 2 else "low"


def summary_messages(question: str, hits: list[WebHit]) -> list[dict[str, str]]:
    system = (
        "You answer a question from web search results only. Cite the results you use as [n] with their "
        "numbers. If the results do not answer the question, say so. At most 150 words."
    )
    prompt_used("research.summary", system)
    user = f"Question: {question}\n\nSearch results:\n\n{digest(hits)}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
