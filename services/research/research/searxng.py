"""A client of SearXNG's JSON search API (`GET /search?q=...&format=json`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)
MAX_SNIPPET_CHARS = 600


class SearchError(Exception):
    """SearXNG could not be asked or gave no usable answer."""


@dataclass(frozen=True)
class WebHit:
    title: str
    url: str
    snippet: str
    engine: str = ""


class SearxngClient:
    def __init__(self, base_url: str, timeout_s: float = 10.0, language: str = "all",
                 http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.language = language
        self._http = http or httpx.AsyncClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def search(self, query: str, timeout_s: float | None = None) -> list[WebHit]:
        """One query; raises SearchError when SearXNG fails or answers something that is not its JSON."""
        timeout = min(self.timeout_s, timeout_s) if timeout_s else self.timeout_s
        if timeout <= 0:
            raise SearchError("no time left before the deadline")
        params = {"q": query, "format": "json", "language": self.language, "pageno": "1"}
        try:
            response = await self._http.get(f"{self.base_url}/search", params=params, timeout=timeout)
        except httpx.HTTPError as exc:
            raise SearchError(f"SearXNG unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            hint = " (is the json format enabled in settings.yml?)" if response.status_code == 403 else ""
            raise SearchError(f"SearXNG answered HTTP {response.status_code}{hint}")
        try:
            data = response.json()
        except ValueError as exc:
            raise SearchError("SearXNG answered with something that is not JSON") from exc
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise SearchError("SearXNG's answer has no results list")
        return [hit for item in results if (hit := _hit(item)) is not None]

    async def search_all(self, queries: list[str], max_results: int,
                         timeout_s: float | None = None) -> list[WebHit]:
        """Several queries at once; hits interleaved (each query's best first), one per URL.

        Raises SearchError only when every query failed."""
        outcomes = await asyncio.gather(*(self.search(q, timeout_s) for q in queries), return_exceptions=True)
        lists: list[list[WebHit]] = []
        errors: list[BaseException] = []
        for outcome in outcomes:
            if isinstance(outcome, SearchError):
                errors.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                lists.append(outcome)
        if errors and not lists:
            raise SearchError("; ".join(str(e) for e in errors))
        if errors:
            log.warning("%d of %d queries failed: %s", len(errors), len(queries), errors[0])
        return _interleave(lists, max_results)


def _hit(item: object) -> WebHit | None:
    if not isinstance(item, dict):
        return None
    url, title = item.get("url"), item.get("title")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    snippet = item.get("content") if isinstance(item.get("content"), str) else ""
    title = title.strip() if isinstance(title, str) and title.strip() else url
    engine = item.get("engine") if isinstance(item.get("engine"), str) else ""
    return WebHit(title=" ".join(title.split()), url=url, snippet=" ".join(str(snippet).split())[:MAX_SNIPPET_CHARS],
                  engine=str(engine))


def _interleave(lists: list[list[WebHit]], limit: int) -> list[WebHit]:
    out: list[WebHit] = []
    seen: set[str] = set()
    for rank in range(max((len(x) for x in lists), default=0)):
        for hits in lists:
            if rank < len(hits) and (key := _url_key(hits[rank].url)) not in seen:
                seen.add(key)
                out.append(hits[rank])
                if len(out) == limit:
                    return out
    return out


def _url_key(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))
