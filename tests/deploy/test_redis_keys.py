"""Every Redis key prefix the code spells is declared (moe_core.runtime.redis_keys): owner, value type, TTL. The code
is read, not run: every string literal and f-string head of the form `<word>:` (or `{…}:<word>`) in libs/
and services/ must be a declared prefix or named as not a key (NOT_KEYS). And a service reaches only the keys
it declares: its own code, and the libs definitions it imports (tests/deploy/redis_usage.py), spell only
prefixes whose owner it is or whose readers name it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import moe_core.stage.registry as stage_registry
from moe_core.runtime import redis_keys
from moe_core.stage.spec import Stage
from tests.deploy.doc_support import REPO
from tests.deploy.redis_usage import reached, service_heads

pytestmark = pytest.mark.unit
HEAD = re.compile(r"^(?:[a-z][a-z-]*|\{\}):(?!//)\S*$")
NAMESPACE = {"namespace", "topic_namespace", "ns"}  # a placeholder that starts a key with the namespace


def _docstrings(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            out.add(id(body[0].value))
    return out


def heads(source: str) -> set[str]:
    """The literal starts (up to the first placeholder; a leading placeholder is `{}`) of the strings that look
    like Redis keys."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip |= {id(p) for p in node.values}
            first, rest = node.values[0], node.values[1:]
            if isinstance(first, ast.FormattedValue):  # `{namespace}:what…` starts a key; `{self.prefix}:…` does not
                text = rest[0].value if rest and isinstance(rest[0], ast.Constant) else ""
                named = ast.unparse(first.value).split(".")[-1]
                head = "{}:" + str(text)[1:].split(":")[0] if named in NAMESPACE and str(text)[:1] == ":" else ""
            else:
                head = ""
                for part in node.values:
                    if not isinstance(part, ast.Constant):
                        break
                    head += str(part.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            head = node.value
        else:
            continue
        if head and HEAD.match(head):
            found.add(head)
    return found


def used() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for root in ("libs", "services"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.name == "redis_keys.py":  # the declarations themselves
                continue
            for head in heads(path.read_text()):
                out.setdefault(head, []).append(str(path.relative_to(REPO)))
    return out


def _declared(head: str) -> bool:
    if head in redis_keys.NOT_KEYS:
        return True
    return any(head == k.prefix or (head.startswith(k.prefix.rstrip(":") + ":") and k.prefix.endswith(":"))
               for k in redis_keys.KEYS)


def test_every_key_prefix_the_code_spells_is_declared() -> None:
    undeclared = {head: paths for head, paths in used().items() if not _declared(head)}
    assert not undeclared, (f"declare these Redis key prefixes in moe_core.runtime.redis_keys (or NOT_KEYS): "
                            f"{undeclared}")


def test_every_declared_prefix_is_used_and_owned_by_a_service() -> None:
    spelled = used()
    names = set(stage_registry.names())
    for key in redis_keys.KEYS:
        assert any(h == key.prefix or h.startswith(key.prefix) for h in spelled), f"{key.prefix} is not used"
        assert key.owner in names and set(key.readers) <= names, key.prefix
    assert len({k.prefix for k in redis_keys.KEYS}) == len(redis_keys.KEYS)


def test_an_undeclared_prefix_is_caught(tmp_path: Path) -> None:
    source = 'PREFIX = f"newstage:thing:{namespace}"\nOTHER = f"{ns}:things"\nok = f"moe:limits:{ns}"\n'
    found = heads(source)
    assert found == {"newstage:thing:", "{}:things", "moe:limits:"}
    assert [h for h in sorted(found) if not _declared(h)] == ["newstage:thing:", "{}:things"]


def _key(head: str) -> redis_keys.RedisKey | None:
    return next((k for k in redis_keys.KEYS if head == k.prefix or (k.prefix.endswith(":") and head.startswith(
        k.prefix.rstrip(":") + ":"))), None)


def _without_cancel(declared: object) -> bool:
    return isinstance(declared, Stage) and declared.cancel is None


# What the static reading reaches but the service never runs, each with the reason: every stage that does not
# follow `cancel` (read from the declarations, so a new stage needs no line here).
NOT_REACHED: dict[tuple[str, str], str] = {
    (entry.name, "cancel:"): "the stage runtime makes its Cancellations only for a stage that follows `cancel` "
                             "(moe_core.stage.resources: stage.cancel is None)"
    for entry in stage_registry.FLEET if _without_cancel(entry.declaration())
}


def undeclared_reads(service: str, reached_heads: dict[str, list[str]]) -> list[str]:
    out = []
    for head, where in sorted(reached_heads.items()):
        key = _key(head)
        if key is not None and service != key.owner and service not in key.readers \
                and (service, key.prefix) not in NOT_REACHED:
            out.append(f"{service} reaches {key.prefix} ({', '.join(sorted(set(where)))}), owned by {key.owner}")
    return out


@pytest.mark.parametrize("service", stage_registry.names())
def test_a_service_reaches_only_the_keys_it_declares(service: str) -> None:
    found = service_heads(REPO / "services" / service, REPO / "libs", heads)
    assert undeclared_reads(service, found) == [], ("name the service among the key's readers "
                                                   "(moe_core.runtime.redis_keys)")


def test_the_check_follows_imported_definitions_and_catches_an_undeclared_read() -> None:
    libs = REPO / "libs"
    assert "expert:disabled:" in reached(libs, {("moe_core.llm.switches", "experts_key")}, heads)
    assert "mcp:disabled:" not in reached(libs, {("moe_core.llm.switches", "experts_key")}, heads)
    settle = reached(libs, {("moe_core.access.settler", "Settler")}, heads)  # through Settlements, its module
    assert "moe:settle:" in settle
    assert undeclared_reads("planner", {"moe:settle:": ["x.py via moe_core.access.settler.Settler"]}) == [
        "planner reaches moe:settle: (x.py via moe_core.access.settler.Settler), owned by gateway"]
    assert undeclared_reads("control-plane", {"moe:settle:": ["settle_sweep.py"]}) == []
    for service, prefix in NOT_REACHED:  # an exemption names a stage that truly does not follow cancel
        declared = stage_registry.service(service).declaration()
        assert declared is not None and getattr(declared, "cancel", "missing") is None, (service, prefix)
