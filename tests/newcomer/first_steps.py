"""What a newcomer reads and runs: `make up`'s printed key and curl command, the README's first Python
snippet. Each is taken from the text the newcomer sees, so a test of it tests that text."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.opa import operator_env

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


@dataclass(frozen=True)
class MakeUp:
    """What `make up` printed: its exit code, the key and the curl command it shows."""

    returncode: int
    output: str

    @property
    def key(self) -> str:
        found = re.search(r"Local admin key .*?: (\S+)", self.output)
        assert found, f"make up printed no key:\n{self.output[-3000:]}"
        return found.group(1)

    @property
    def curl(self) -> str:
        """The curl command as printed (continuation lines joined by the shell, as when pasted)."""
        found = re.search(r"^\s*(curl -s .*?\}\]\}')\s*$", self.output, re.MULTILINE | re.DOTALL)
        assert found, f"make up printed no curl command:\n{self.output[-3000:]}"
        return found.group(1)


def make(target: str, timeout_s: int, *assignments: str) -> subprocess.CompletedProcess[str]:
    """`make target NAME=value...` in the checkout, as typed (each assignment one argument: no shell), in the
    operator's environment (the local fleet's defaults: OPA on the signed bundle, tests.support.opa.operator_env)."""
    return subprocess.run(["make", "--no-print-directory", target, *assignments], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s, check=False, env=operator_env())


def make_up(timeout_s: int = 1500) -> MakeUp:
    done = make("up", timeout_s)
    return MakeUp(done.returncode, done.stdout + done.stderr)


def readme_first_python(key: str) -> str:
    """The README's first Python block (the Quick start's OpenAI snippet), with the key filled in."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert blocks, "README.md has no python block"
    assert '"<make key>"' in blocks[0], "the README's first snippet no longer takes the key `make key` prints"
    return blocks[0].replace('"<make key>"', repr(key))
