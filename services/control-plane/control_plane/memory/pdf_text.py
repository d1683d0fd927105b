"""A PDF's text, read in a child process under hard bounds: a few kilobytes of PDF can expand to megabytes
of text per page at seconds of CPU each (compressed content streams, form XObjects drawn thousands of
times, one stream shared by hundreds of pages), so pypdf never runs in the control plane's own process.

The child (`python -m control_plane.memory.pdf_child`) reads the PDF on stdin, limits itself before it parses anything
(RLIMIT_CPU: the kernel stops it at MOE_MEMORY_PDF_CPU_S seconds of CPU; RLIMIT_AS: MOE_MEMORY_PDF_MEMORY_MB),
extracts page by page and stops as soon as the text passes the character limit. It answers one JSON line:
the pages' text, or the refusal. The parent gives it MOE_MEMORY_PDF_TIMEOUT_S of wall time, reads at most
what the character limit allows, kills it past either bound, and runs at most MOE_MEMORY_PDF_WORKERS at once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import weakref
from dataclasses import dataclass
from typing import Any

MAX_BYTES_PER_CHAR = 6  # a control character as a JSON \\u escape
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


class PdfRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class PdfWorker:
    """The bounds of one child (the MOE_MEMORY_PDF_* settings)."""

    cpu_s: int = 20
    timeout_s: float = 60.0
    memory_mb: int = 1024
    workers: int = 2


def _too_complex(what: str) -> PdfRefused:
    return PdfRefused(422, "document_too_complex", f"the PDF could not be read within its bounds ({what}); "
                                                   "it may be built to expand: upload its text instead")


async def pdf_pages(data: bytes, max_chars: int, max_pages: int, bounds: PdfWorker) -> list[str]:
    """The non-empty pages' text (stripped), or PdfRefused (4xx) within the bounds."""
    slots = _slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(bounds.workers))  # per process
    async with slots:
        args = [str(v) for v in (max_chars, max_pages, bounds.cpu_s, bounds.memory_mb)]
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "control_plane.memory.pdf_child", *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            out = await asyncio.wait_for(_exchange(child, data, max_chars * MAX_BYTES_PER_CHAR + 65_536),
                                         bounds.timeout_s)
        except TimeoutError:
            raise _too_complex(f"more than {bounds.timeout_s:g} s, MOE_MEMORY_PDF_TIMEOUT_S") from None
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    if out is None:
        raise PdfRefused(413, "document_too_large", f"the PDF has more than {max_chars} characters of "
                                                    "text (MOE_MEMORY_MAX_CHARS)")
    if child.returncode == -signal.SIGXCPU:  # the kernel ended it at its CPU limit
        raise _too_complex(f"more than {bounds.cpu_s} s of CPU, MOE_MEMORY_PDF_CPU_S")
    if child.returncode != 0 or not out:  # e.g. out of memory outside the reader's own MemoryError handling
        raise _too_complex(f"the reader ended with status {child.returncode}; MOE_MEMORY_PDF_MEMORY_MB is "
                           f"{bounds.memory_mb}")
    answer: dict[str, Any] = json.loads(out)
    if "error" in answer:
        raise PdfRefused(*answer["error"])
    return list(answer["pages"])


async def _exchange(child: asyncio.subprocess.Process, data: bytes, limit: int) -> bytes | None:
    """Send the PDF, read the answer: None past `limit` bytes."""
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(data)
        await child.stdin.drain()
        child.stdin.close()
    except (BrokenPipeError, ConnectionResetError):  # it ended before reading it all: its status tells why
        pass
    out = await child.stdout.read(limit + 1)
    while len(out) <= limit and (more := await child.stdout.read(limit + 1 - len(out))):
        out += more
    if len(out) > limit:
        return None
    await child.wait()
    return out
