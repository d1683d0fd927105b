"""What an uploaded document becomes: its text (Markdown and plain text as UTF-8, PDF through pypdf in a
bounded child process, control_plane.memory.pdf_text) and its chunks (semantic-text-splitter, measured in the embedding
model's own tokens, so no chunk is cut off by the model). Every refusal is a MemoryInputError with the
status and the reason."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from control_plane.memory.pdf_text import PdfRefused, PdfWorker, pdf_pages
from moe_core.llm.unicode_text import replace_lone_surrogates

MediaType = Literal["text/markdown", "text/plain", "application/pdf"]
EXTENSIONS: dict[str, MediaType] = {".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain",
                                    ".text": "text/plain", ".pdf": "application/pdf"}
SUPPORTED = ", ".join(sorted(set(EXTENSIONS.values())))
MAX_TOKENS = 256  # what the embedding model reads (moe_core.knowledge.embeddings.MAX_TOKENS)
log = logging.getLogger(__name__)


class MemoryInputError(Exception):
    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_chars: int
    max_pages: int
    pdf: PdfWorker = field(default_factory=PdfWorker)  # the bounds of the child process that reads a PDF


def media_type(filename: str, declared: str | None) -> MediaType:
    """The document's type from its file name, else its declared content type; anything else is refused."""
    name = filename.lower()
    for ext, kind in EXTENSIONS.items():
        if name.endswith(ext):
            return kind
    base = (declared or "").split(";")[0].strip().lower()
    if base in ("text/markdown", "text/x-markdown"):
        return "text/markdown"
    if base in ("text/plain", "application/pdf"):
        return base  # type: ignore[return-value]
    raise MemoryInputError(400, f"unsupported document type {filename!r} ({base or 'no content type'}); "
                                f"supported: {SUPPORTED} (.md, .markdown, .txt, .pdf)", "unsupported_document_type",
                           "file")


async def text_of(data: bytes, kind: MediaType, limits: Limits) -> str:
    """The document's text, bounded; empty or unreadable documents are refused. A PDF is read in a bounded
    child process (control_plane.memory.pdf_text)."""
    if not data:
        raise MemoryInputError(400, "the document is empty", "empty_document", "file")
    if len(data) > limits.max_bytes:
        raise MemoryInputError(413, f"the document is {len(data)} bytes; at most {limits.max_bytes} "
                                    "(MOE_MEMORY_MAX_FILE_BYTES)", "document_too_large", "file")
    text = await _pdf_text(data, limits) if kind == "application/pdf" else _utf8(data)
    return check_text(text, limits)


def check_text(text: str, limits: Limits, param: str = "file") -> str:
    text = text.replace("\x00", "").strip()
    if not text:
        raise MemoryInputError(400, "the document has no text", "empty_document", param)
    if len(text) > limits.max_chars:
        raise MemoryInputError(413, f"the document has {len(text)} characters of text; at most {limits.max_chars} "
                                    "(MOE_MEMORY_MAX_CHARS)", "document_too_large", param)
    return text


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MemoryInputError(400, "the document is not UTF-8 text", "invalid_document", "file") from None


async def _pdf_text(data: bytes, limits: Limits) -> str:
    if not data.lstrip()[:5] == b"%PDF-":
        raise MemoryInputError(400, "the file is not a PDF (no %PDF- header)", "invalid_document", "file")
    try:
        pages = await pdf_pages(data, limits.max_chars, limits.max_pages, limits.pdf)
    except PdfRefused as exc:
        log.info("PDF refused: %s", exc.message)
        raise MemoryInputError(exc.status, exc.message, exc.code, "file") from None
    if not pages:
        raise MemoryInputError(400, "the PDF has no extractable text (a scan? OCR is not supported)",
                               "empty_document", "file")
    # A font's ToUnicode map may name a lone surrogate (pypdf keeps it, surrogatepass): the glyph is unreadable,
    # not the document, so it becomes U+FFFD (no store or tokenizer takes a lone surrogate, moe_core.llm.unicode_text)
    return replace_lone_surrogates("\n\n".join(pages))


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    from moe_core.knowledge.embeddings import model_files

    tokenizer = Tokenizer.from_file(str(model_files()[1]))
    tokenizer.no_truncation()  # count every token: the splitter must see a chunk's true length
    tokenizer.no_padding()
    return tokenizer


@lru_cache(maxsize=8)
def _splitter(markdown: bool, capacity: int, overlap: int) -> Any:
    from semantic_text_splitter import MarkdownSplitter, TextSplitter

    kind = MarkdownSplitter if markdown else TextSplitter
    return kind.from_huggingface_tokenizer(_tokenizer(), (capacity // 2, capacity), overlap=overlap)


def chunks(text: str, kind: MediaType, capacity: int, overlap: int) -> list[str]:
    """Chunks of at most `capacity` model tokens, split at the largest semantic unit that fits (Markdown:
    headings, then blocks, then sentences). A heading left alone (its section did not fit with it) goes
    with the chunk after it, as long as that stays within what the model reads."""
    splitter = _splitter(kind == "text/markdown", capacity, min(overlap, capacity // 4))
    out: list[str] = []
    pending = ""
    for chunk in (c.strip() for c in splitter.chunks(text)):
        if not chunk:
            continue
        if pending and len(_tokenizer().encode(f"{pending}\n\n{chunk}").ids) <= MAX_TOKENS:
            chunk = f"{pending}\n\n{chunk}"
        elif pending:
            out.append(pending)
        pending = ""
        if kind == "text/markdown" and _headings_only(chunk):
            pending = chunk
            continue
        out.append(chunk)
    return [*out, pending] if pending else out


def _headings_only(chunk: str) -> bool:
    return all(line.lstrip().startswith("#") for line in chunk.splitlines() if line.strip())
