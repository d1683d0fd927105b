"""The record check verifies a case's response ids at once: what each `replay verify` prints stays its own, so a
"not recorded yet" of one id is never read as another's (tests/support/record_check.py)."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

from tests.support import record_check

pytestmark = pytest.mark.unit


async def _prints(word: str, out: io.StringIO) -> str:
    token = record_check._OUT.set(out)
    try:
        for _ in range(3):
            print(word)
            print(f"{word} on stderr", file=sys.stderr)
            await asyncio.sleep(0)  # the other task prints in between
    finally:
        record_check._OUT.reset(token)
    return out.getvalue()


async def _both() -> list[str]:
    real, real_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = record_check._TaskOut(io.StringIO())
    try:
        return list(await asyncio.gather(_prints("one", io.StringIO()), _prints("two", io.StringIO())))
    finally:
        sys.stdout, sys.stderr = real, real_err


def test_each_task_reads_only_what_it_printed() -> None:
    one, two = asyncio.run(_both())
    assert one == "one\none on stderr\n" * 3, one
    assert two == "two\ntwo on stderr\n" * 3, two
