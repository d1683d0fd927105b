"""graph_analyze: components, cycles, Eulerian path/circuit (Hierholzer) and BFS shortest path."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from mcp_service.tools.base import ToolOutput, wrong


class Graph:
    def __init__(self, edges: list[tuple[str, str]], nodes: list[str], directed: bool) -> None:
        self.directed = directed
        self.edges = edges
        self.nodes = list(dict.fromkeys([*nodes, *(n for edge in edges for n in edge)]))
        self.out: dict[str, list[tuple[str, int]]] = defaultdict(list)  # node -> [(neighbour, edge index)]
        self.indeg: dict[str, int] = defaultdict(int)
        for i, (a, b) in enumerate(edges):
            self.out[a].append((b, i))
            self.indeg[b] += 1
            if not directed:
                self.out[b].append((a, i))

    def degree(self, node: str) -> int:
        return len(self.out[node])

    def components(self) -> list[list[str]]:
        """Connected components (weak ones for a directed graph)."""
        undirected: dict[str, set[str]] = defaultdict(set)
        for a, b in self.edges:
            undirected[a].add(b)
            undirected[b].add(a)
        seen: set[str] = set()
        out = []
        for start in self.nodes:
            if start in seen:
                continue
            seen.add(start)
            component, queue = [], deque([start])
            while queue:
                node = queue.popleft()
                component.append(node)
                for nxt in undirected[node]:
                    if nxt not in seen:
                        seen.add(nxt)
                        queue.append(nxt)
            out.append(component)
        return out

    def has_cycle(self, components: int) -> bool:
        if not self.directed:
            return len(self.edges) > len(self.nodes) - components
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        for root in self.nodes:
            if root in state:
                continue
            stack = [(root, iter(self.out[root]))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                step = next(it, None)
                if step is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(step[0]) == 1:
                    return True
                elif step[0] not in state:
                    state[step[0]] = 1
                    stack.append((step[0], iter(self.out[step[0]])))
        return False

    def euler(self) -> tuple[str | None, list[str]]:
        """('circuit' | 'path' | None, the walk)."""
        if not self.edges:
            return None, []
        with_edges = [c for c in self.components() if any(self.out[n] or self.indeg[n] for n in c)]
        if len(with_edges) != 1:
            return None, []
        if self.directed:
            plus = [n for n in self.nodes if len(self.out[n]) - self.indeg[n] == 1]
            minus = [n for n in self.nodes if self.indeg[n] - len(self.out[n]) == 1]
            balanced = all(len(self.out[n]) == self.indeg[n] for n in self.nodes if n not in plus + minus)
            if not balanced or len(plus) != len(minus) or len(plus) > 1:
                return None, []
            start = plus[0] if plus else next(n for n in self.nodes if self.out[n])
        else:
            odd = [n for n in self.nodes if self.degree(n) % 2]
            if len(odd) not in (0, 2):
                return None, []
            start = odd[0] if odd else next(n for n in self.nodes if self.out[n])
        return ("circuit" if self._balanced() else "path"), self._hierholzer(start)

    def _balanced(self) -> bool:
        if self.directed:
            return all(len(self.out[n]) == self.indeg[n] for n in self.nodes)
        return all(self.degree(n) % 2 == 0 for n in self.nodes)

    def _hierholzer(self, start: str) -> list[str]:
        used = [False] * len(self.edges)
        pointer: dict[str, int] = defaultdict(int)
        stack, walk = [start], []
        while stack:
            node = stack[-1]
            edges = self.out[node]
            while pointer[node] < len(edges) and used[edges[pointer[node]][1]]:
                pointer[node] += 1
            if pointer[node] == len(edges):
                walk.append(stack.pop())
            else:
                nxt, index = edges[pointer[node]]
                used[index] = True
                stack.append(nxt)
        return walk[::-1]

    def shortest_path(self, source: str, target: str) -> list[str] | None:
        previous: dict[str, str | None] = {source: None}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            if node == target:
                path: list[str] = []
                cursor: str | None = node
                while cursor is not None:
                    path.append(cursor)
                    cursor = previous[cursor]
                return path[::-1]
            for nxt, _ in self.out[node]:
                if nxt not in previous:
                    previous[nxt] = node
                    queue.append(nxt)
        return None


def graph_analyze(args: dict[str, Any]) -> ToolOutput:
    edges = [(str(a), str(b)) for a, b in args["edges"]]
    graph = Graph(edges, [str(n) for n in args.get("nodes", [])], bool(args.get("directed")))
    if not graph.nodes:
        raise wrong("the graph has no nodes")
    components = graph.components()
    kind, walk = graph.euler()
    result: dict[str, Any] = {
        "directed": graph.directed, "nodes": len(graph.nodes), "edges": len(edges),
        "components": len(components), "component_sizes": sorted((len(c) for c in components), reverse=True),
        "connected": len(components) == 1, "has_cycle": graph.has_cycle(len(components)),
        "eulerian": kind, "euler_walk": walk,
        "degrees": {n: graph.degree(n) if not graph.directed else {"in": graph.indeg[n], "out": len(graph.out[n])}
                    for n in graph.nodes[:1000]},
    }
    text = (f"{result['nodes']} nodes, {result['edges']} edges, {result['components']} connected component"
            f"{'s' if len(components) != 1 else ''}; {'a cycle' if result['has_cycle'] else 'no cycle'}; ")
    text += f"Eulerian {kind}: {' → '.join(walk[:30])}{'…' if len(walk) > 30 else ''}" if kind else \
        "no Eulerian path"
    if "path_from" in args and "path_to" in args:
        path = graph.shortest_path(str(args["path_from"]), str(args["path_to"]))
        result["shortest_path"] = path
        text += (f"; shortest path {' → '.join(path)} ({len(path) - 1} edges)" if path else
                 f"; no path from {args['path_from']} to {args['path_to']}")
    return ToolOutput(text + ".", result)
