"""A repository map: the symbols and signatures that matter most for a task, within a token budget.

As aider's repo map does, with Python's own ``ast`` instead of tree-sitter: each module's
definitions (classes, functions, methods, with signatures and lines) and the identifiers it
references; a graph whose edges go from a module to the modules defining what it uses;
PageRank personalised to the files in play and to the words of the task; then the best
definitions, in rank order, as many as the budget holds (found by binary search).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_CACHED = 50_000
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_COMMON = frozenset({"self", "cls", "None", "True", "False", "str", "int", "list", "dict", "len", "print",
                     "the", "and", "for", "with", "from", "import", "return", "def", "class", "test"})


def estimate_tokens(text: str) -> int:
    """About four characters per token: the same estimate the budget checks use."""
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class Definition:
    path: str
    name: str
    line: int
    signature: str


@dataclass
class ModuleTags:
    path: str
    definitions: list[Definition] = field(default_factory=list)
    references: set[str] = field(default_factory=set)
    error: str | None = None


def _signature(node: ast.AST, prefix: str = "") -> str:
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {node.name}({bases})" if bases else f"class {node.name}"
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    kind = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix}{kind} {node.name}({ast.unparse(node.args)}){ret}"


def tag_module(path: str, source: str) -> ModuleTags:
    """Definitions and referenced names of one Python module (a syntax error leaves it empty)."""
    tags = ModuleTags(path)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as e:
        tags.error = f"not parsed: {e}"
        return tags
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef):
            tags.definitions.append(Definition(path, statement.name, statement.lineno, _signature(statement)))
            for item in statement.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    tags.definitions.append(Definition(path, f"{statement.name}.{item.name}", item.lineno,
                                                       _signature(item, "    ")))
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            tags.definitions.append(Definition(path, statement.name, statement.lineno, _signature(statement)))
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id.isupper():
                    tags.definitions.append(Definition(path, t.id, statement.lineno, t.id))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            tags.references.add(node.id)
        elif isinstance(node, ast.Attribute):
            tags.references.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            tags.references.update(a.name for a in node.names)
    return tags


def _pagerank(nodes: list[str], edges: Mapping[str, Mapping[str, float]], personal: Mapping[str, float],
              damping: float = 0.85, rounds: int = 30) -> dict[str, float]:
    if not nodes:
        return {}
    total = sum(personal.values())
    base = {n: personal.get(n, 0.0) / total for n in nodes} if total else {n: 1 / len(nodes) for n in nodes}
    rank = dict(base)
    out_weight = {n: sum(edges.get(n, {}).values()) for n in nodes}
    for _ in range(rounds):
        nxt = {n: (1 - damping) * base[n] for n in nodes}
        dangling = sum(rank[n] for n in nodes if not out_weight[n])
        for n in nodes:
            if out_weight[n]:
                for m, w in edges[n].items():
                    nxt[m] += damping * rank[n] * w / out_weight[n]
        for n in nodes:
            nxt[n] += damping * dangling * base[n]
        rank = nxt
    return rank


class RepoMap:
    """Built from a snapshot of the files; modules are parsed once and kept by content."""

    def __init__(self) -> None:
        self._tags: dict[tuple[str, int], ModuleTags] = {}

    def _tags_of(self, files: Mapping[str, str]) -> list[ModuleTags]:
        out = []
        for path, text in files.items():
            if not path.endswith(".py"):
                continue
            key = (path, hash(text))
            tags = self._tags.get(key)
            if tags is None:
                if len(self._tags) > MAX_CACHED:  # an always-on daemon: old versions must not pile up
                    self._tags.clear()
                tags = self._tags[key] = tag_module(path, text)
            out.append(tags)
        return out

    def ranked(self, files: Mapping[str, str], *, focus: Iterable[str] = (), words: str = "") -> list[Definition]:
        """Every definition, most relevant first."""
        modules = self._tags_of(files)
        defined: dict[str, set[str]] = defaultdict(set)
        for m in modules:
            for d in m.definitions:
                defined[d.name.rsplit(".", 1)[-1]].add(m.path)
        edges: dict[str, dict[str, float]] = defaultdict(dict)
        for m in modules:
            for name in m.references:
                if name in _COMMON:
                    continue
                for target in defined.get(name, ()):
                    if target != m.path:
                        # Names defined in many places say little about which one is meant.
                        edges[m.path][target] = edges[m.path].get(target, 0.0) + 1 / len(defined[name])
        mentioned = {w for w in _WORD.findall(words) if w not in _COMMON}
        lowered = {w.lower() for w in mentioned}
        focus_set = set(focus)
        personal: dict[str, float] = {}
        for m in modules:
            weight = 0.0
            if m.path in focus_set:
                weight += 10.0
            stem = m.path.rsplit("/", 1)[-1].removesuffix(".py").lower()
            if stem in lowered or any(part in lowered for part in m.path.lower().split("/")):
                weight += 5.0
            weight += sum(1.0 for d in m.definitions if d.name.rsplit(".", 1)[-1] in mentioned)
            # Callers of what the task names are where a change spreads to.
            weight += 0.5 * len(mentioned & m.references)
            if weight:
                personal[m.path] = weight
        rank = _pagerank([m.path for m in modules], edges, personal)
        scored = []
        for m in modules:
            for d in m.definitions:
                boost = 10.0 if d.name.rsplit(".", 1)[-1] in mentioned else 1.0
                scored.append((rank.get(m.path, 0.0) * boost, d))
        scored.sort(key=lambda x: (-x[0], x[1].path, x[1].line))
        return [d for _, d in scored]

    @staticmethod
    def render(definitions: Iterable[Definition]) -> str:
        by_file: dict[str, list[Definition]] = defaultdict(list)
        order: list[str] = []
        for d in definitions:
            if d.path not in by_file:
                order.append(d.path)
            by_file[d.path].append(d)
        parts = []
        for path in order:
            parts.append(f"{path}:")
            parts += [f"  L{d.line}: {d.signature}" for d in sorted(by_file[path], key=lambda d: d.line)]
        return "\n".join(parts)

    def build(self, files: Mapping[str, str], *, budget_tokens: int, focus: Iterable[str] = (),
              words: str = "") -> str:
        """The map text: as many of the best-ranked definitions as fit ``budget_tokens``."""
        ranked = self.ranked(files, focus=focus, words=words)
        other = sorted(p for p in files if not p.endswith(".py"))
        tail = f"\n(other files: {', '.join(other[:30])}{' ...' if len(other) > 30 else ''})" if other else ""
        low, high, best = 0, len(ranked), ""
        while low <= high:
            mid = (low + high) // 2
            text = self.render(ranked[:mid])
            if estimate_tokens(text) <= budget_tokens:
                best, low = text, mid + 1
            else:
                high = mid - 1
        shown = best.count("\n  L")
        note = f"\n({len(ranked) - shown} more definitions not shown: search or ask for a focus)" \
            if shown < len(ranked) else ""
        text = (best or "(no Python definitions)") + note
        return text + tail if estimate_tokens(text + tail) <= budget_tokens + 60 else text
