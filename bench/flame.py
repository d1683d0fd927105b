"""A flame graph (SVG) from py-spy's collapsed stacks (`frame;frame;frame count` per line): the width of
a frame is its share of the samples, callers below callees. Open it in a browser: hovering a frame shows
its name and share. Frames under MIN_SHARE of the samples are left out."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

WIDTH = 1200
ROW = 16
MIN_SHARE = 0.002
_LINE_NO = re.compile(r":\d+\)$")
OURS = ("moe_core/", "planner/", "merger/", "expert_worker/", "graph_rag/", "gateway/", "research/", "critic/",
        "mcp_service/", "graph_ingest/", "gap_healer/")


@dataclass
class Node:
    name: str
    count: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def parse(collapsed: str) -> Node:
    root = Node("all")
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        root.count += n
        node = root
        for frame in stack.split(";"):
            name = _LINE_NO.sub(")", frame)
            node = node.children.setdefault(name, Node(name))
            node.count += n
    return root


def svg(collapsed: str, title: str) -> str:
    root = parse(collapsed)
    rects: list[str] = []
    depth = _layout(root, 0.0, 0, root.count or 1, rects)
    height = (depth + 2) * ROW + 24
    body = "\n".join(rects)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" '
            f'font-size="11"><rect width="100%" height="100%" fill="#fdfdf8"/>'
            f'<text x="6" y="16" font-size="13">{html.escape(title)} — {root.count} samples</text>\n'
            f'<g transform="translate(0,{height - ROW})">{body}</g></svg>\n')


def _layout(node: Node, x: float, level: int, total: int, out: list[str]) -> int:
    width = WIDTH * node.count / total
    share = 100 * node.count / total
    colour = "#7fb3e6" if any(p in node.name for p in OURS) else "#f2a65a" if level else "#cccccc"
    label = html.escape(node.name)
    text = label[: max(int(width / 7) - 1, 0)]
    out.append(f'<g><title>{label} ({share:.1f} %)</title><rect x="{x:.1f}" y="{-level * ROW}" '
               f'width="{max(width - 0.5, 0.1):.1f}" height="{ROW - 1}" fill="{colour}"/>'
               + (f'<text x="{x + 3:.1f}" y="{-level * ROW + 11}">{text}</text>' if text else "") + "</g>")
    deepest = level
    child_x = x
    for child in sorted(node.children.values(), key=lambda c: c.name):
        if child.count / total >= MIN_SHARE:
            deepest = max(deepest, _layout(child, child_x, level + 1, total, out))
        child_x += WIDTH * child.count / total
    return deepest
