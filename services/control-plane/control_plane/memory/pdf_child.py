"""The child process of control_plane.memory.pdf_text: `python -m control_plane.memory.pdf_child MAX_CHARS MAX_PAGES
CPU_S MEMORY_MB`
reads a PDF on stdin and writes one JSON line, {"pages": [text, ...]} or {"error": [status, code, message]}.
It bounds itself before reading anything: CPU seconds (the kernel ends it at the limit), address space,
no core file. Pages are read one at a time and reading stops at the first page past the character limit."""

from __future__ import annotations

import io
import json
import logging
import resource
import sys

from moe_core.llm.unicode_text import replace_lone_surrogates


def _limit(cpu_s: int, memory_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))  # soft: SIGXCPU ends it; hard: SIGKILL
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def pages(data: bytes, max_chars: int, max_pages: int) -> dict[str, object]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return {"error": [400, "invalid_document", "the PDF is encrypted"]}
        count = len(reader.pages)
        if count > max_pages:
            return {"error": [413, "document_too_large", f"the PDF has {count} pages; at most {max_pages} "
                                                         "(MOE_MEMORY_MAX_PDF_PAGES)"]}
        found: list[str] = []
        chars = 0
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").replace("\x00", "").strip()
            text = replace_lone_surrogates(text)  # a broken font map's glyph -> U+FFFD, the rest kept
            if not text:
                continue
            chars += len(text) + (2 if found else 0)  # joined by a blank line
            if chars > max_chars:
                return {"error": [413, "document_too_large", f"the PDF has more than {max_chars} characters of "
                                                             f"text (by page {number} of {count}; "
                                                             "MOE_MEMORY_MAX_CHARS)"]}
            found.append(text)
    except MemoryError:
        return {"error": [422, "document_too_complex", "the PDF needs more memory to read than it may use "
                                                       "(MOE_MEMORY_PDF_MEMORY_MB)"]}
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        return {"error": [400, "invalid_document", f"the PDF could not be read: {type(exc).__name__}"]}
    return {"pages": found}


def main(argv: list[str]) -> None:
    max_chars, max_pages, cpu_s, memory_mb = (int(v) for v in argv)
    _limit(cpu_s, memory_mb)
    logging.disable(logging.WARNING)  # pypdf's warnings about broken files go nowhere
    answer = pages(sys.stdin.buffer.read(), max_chars, max_pages)
    sys.stdout.buffer.write(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")


if __name__ == "__main__":
    main(sys.argv[1:])
