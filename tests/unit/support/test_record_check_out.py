"""The record check verifies a case's response ids at once: what each `replay verify` prints stays its own, so a
"not recorded yet" of one id is never read as another's (tests/support/record_check.py)."""

from __future__ import annotations

import asyncio
import io
import os
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


def test_the_fleets_environment_is_set_while_the_check_runs_and_put_back_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOE_RECORD_CHECK_KEPT", "mine")
    monkeypatch.delenv("MOE_RECORD_CHECK_NEW", raising=False)
    with record_check.fleet_environment({"MOE_RECORD_CHECK_KEPT": "fleet", "MOE_RECORD_CHECK_NEW": "fleet"}):
        assert (os.environ["MOE_RECORD_CHECK_KEPT"], os.environ["MOE_RECORD_CHECK_NEW"]) == ("fleet", "fleet")
    assert os.environ["MOE_RECORD_CHECK_KEPT"] == "mine" and "MOE_RECORD_CHECK_NEW" not in os.environ


def test_a_verify_that_raises_is_an_incomplete_record_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(rid: str) -> tuple[bool, str]:
        raise ConnectionError(f"no broker for {rid}")

    monkeypatch.setattr(record_check, "_verified", broken)
    code, out = asyncio.run(record_check._main(5, ["rid-1"]))
    assert code == 1 and out == "INCOMPLETE rid-1: replay verify raised ConnectionError('no broker for rid-1')", out
