"""Growing repository: what the Developer's tool loop costs at 10, 100 and 1,000 modules.

A generated repository (modules with tests, plus a 40 KB module whose LAST function must
change, and two callers of it in other modules) is put in a real git workspace. A scripted
"oracle" model behind the real ``LLMClient`` must find the code through the tools: it
searches for the function, reads it by line range, edits it by search/replace with the text
it read, searches for the callers and edits them, runs QA's test file, and finishes (the
finish gate runs the whole suite in the sandbox). Per size it prints: prompt tokens per task
(largest single prompt and total, from ``llm_calls``), tool calls, whether every edit applied
and the 40 KB module is byte-identical outside the changed function, and wall time outside
the model (and of that, test runs).

Targets: largest prompt at 1,000 modules within 1.5x of that at 10; the 40 KB edit succeeds.
Last line, for scripts: ``growing_repo: prompt ratio 1000/10 = R.RR; 40KB edit: ok`` (or FAILED: why).

    .venv/bin/python -m bench.growing_repo [--sizes 10,100,1000]
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ai_agents.agents.coder import DeveloperAgent
from ai_agents.agents.tools.repo_map import estimate_tokens
from ai_agents.config.live import LiveConfig
from ai_agents.config.models import ProviderConfig, Settings
from ai_agents.domain import Task, TaskType
from ai_agents.file_system import FileSystemManager
from ai_agents.git import GitManager
from ai_agents.llm import LLMClient
from ai_agents.llm.base import ProviderReply, ProviderRequest
from ai_agents.llm.tools import ToolCall, turn_texts
from ai_agents.memory import Database, MemoryStore
from ai_agents.memory.context import ContextManager
from ai_agents.memory.tasks import TaskStore
from ai_agents.orchestrator.coding_tools import ToolStages
from ai_agents.orchestrator.stages import CodePayload
from ai_agents.orchestrator.workspace import Workspace
from ai_agents.testing import TestRunner

TARGET_OLD = "def target_function(value):\n    \"\"\"Double a value.\"\"\"\n    return value * 2\n"
TARGET_NEW = "def target_function(value, factor=2):\n    \"\"\"Scale a value.\"\"\"\n    return value * factor\n"
QA_TESTS = ("def test_factor():\n    from pkg.big import target_function\n\n"
            "    assert target_function(2, factor=5) == 10\n\n\n"
            "def test_callers_pass_three():\n    from pkg.caller_a import use_a\n    from pkg.caller_b import use_b\n\n"
            "    assert use_a(2) == 7 and use_b(2) == 5\n")


def generate(root: Path, modules: int) -> str:
    """Write the repository; returns the 40 KB module's text."""
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg/__init__.py").write_text("")
    (root / "tests/__init__.py").write_text("")
    for i in range(modules - 3):
        prev = f"from pkg.mod_{i - 1:04d} import step_{i - 1:04d}\n\n\n" if i else ""
        call = f"step_{i - 1:04d}(x) + 1" if i else "x + 1"
        (root / f"pkg/mod_{i:04d}.py").write_text(
            f'"""Module {i}."""\n\n{prev}def step_{i:04d}(x: int) -> int:\n    """Step {i}."""\n    return x + 1\n\n\n'
            f"def chain_{i:04d}(x: int) -> int:\n    return {call}\n")
        (root / f"tests/test_mod_{i:04d}.py").write_text(
            f"from pkg.mod_{i:04d} import step_{i:04d}\n\n\ndef test_step():\n    assert step_{i:04d}(1) == 2\n")
    helpers, k = [], 0
    while sum(map(len, helpers)) < 41_000:
        helpers.append(f"def helper_{k:04d}(x):\n    \"\"\"Helper {k}: add {k} to x.\"\"\"\n    return x + {k}\n\n\n")
        k += 1
    big = '"""A large module."""\n\n\n' + "".join(helpers) + TARGET_OLD
    (root / "pkg/big.py").write_text(big)
    for name, op in (("a", "+ 1"), ("b", "- 1")):
        (root / f"pkg/caller_{name}.py").write_text(
            f'"""Caller {name}."""\n\nfrom pkg.big import target_function\n\n\ndef use_{name}(v):\n'
            f"    return target_function(v) {op}\n")
    (root / "tests/test_target.py").write_text(QA_TESTS)
    return big


@dataclass
class Oracle:
    """A scripted model that decides its next call from the tool results it was sent."""

    kind: str = "scripted"
    config: ProviderConfig = field(default_factory=lambda: ProviderConfig(provider="scripted", model="oracle",
                                                                          script_path="unused.yaml"))
    config_path: str = "llm"
    seconds: float = 0.0
    step: str = "find"
    callers: list[tuple[str, int]] = field(default_factory=list)
    target_path: str = ""
    ids: int = 0

    @property
    def label(self) -> str:
        return "scripted:oracle"

    def missing_key(self) -> str | None:
        return None

    def close(self) -> None:
        """Nothing to release."""

    def _call(self, name: str, **arguments: Any) -> ToolCall:
        self.ids += 1
        return ToolCall(id=f"c{self.ids}", name=name, arguments=arguments)

    def _decide(self, last: str) -> ToolCall:
        if self.step == "find":
            self.step = "read"
            return self._call("search", pattern=r"def target_function\(")
        if self.step == "read":
            path, line = re.search(r"^([\w/.]+):(\d+): def target_function", last, re.M).groups()  # type: ignore[union-attr]
            self.target_path, self.step = path, "edit"
            return self._call("read_file", path=path, start_line=int(line), end_line=int(line) + 5)
        if self.step == "edit":
            lines = [m.group(1) for m in re.finditer(r"^\s*\d+\| ?(.*)$", last, re.M)]
            body = []
            for text in lines:
                if body and text and not text.startswith((" ", "\t")):
                    break
                body.append(text)
            old = "\n".join(body).rstrip("\n") + "\n"
            new = old.replace("def target_function(value):", "def target_function(value, factor=2):")
            new = new.replace('"""Double a value."""', '"""Scale a value."""').replace("value * 2", "value * factor")
            self.step = "callers"
            return self._call("edit_file", path=self.target_path, old_text=old, new_text=new)
        if self.step == "callers":
            self.step = "caller_read"
            return self._call("search", pattern=r"target_function\(", path_glob="pkg/**")
        if self.step == "caller_read":
            self.callers = [(p, int(n)) for p, n, text in re.findall(r"^([\w/.]+):(\d+): (.*)$", last, re.M)
                            if "def target_function" not in text and p != self.target_path]
            self.step = "caller_edit"
        if self.step == "caller_edit" and self.callers:
            self.step = "caller_replace"
            path, line = self.callers[0]
            return self._call("read_file", path=path, start_line=line, end_line=line)
        if self.step == "caller_replace":
            path, _ = self.callers.pop(0)
            self.step = "caller_edit"
            text = re.search(r"^\s*\d+\| (.*)$", last, re.M).group(1)  # type: ignore[union-attr]
            return self._call("edit_file", path=path, old_text=text,
                              new_text=text.replace("target_function(v)", "target_function(v, factor=3)"))
        if self.step == "caller_edit":
            self.step = "test"
            return self._call("run_tests", paths=["tests/test_target.py"])
        return self._call("finish", summary="target_function takes a factor; both callers pass 3")

    def complete(self, request: ProviderRequest) -> ProviderReply:
        started = time.perf_counter()
        last = request.turns[-1].text if request.turns else ""
        call = self._decide(last)
        texts = ([request.system] if request.system else []) + turn_texts(request.turns)
        tokens_in = sum(estimate_tokens(t) for t in texts) + sum(estimate_tokens(str(t.parameters))
                                                                 for t in request.tools)
        self.seconds += time.perf_counter() - started
        return ProviderReply(text="", tokens_in=tokens_in, tokens_out=estimate_tokens(str(call.arguments)),
                             model="oracle", tool_calls=(call,))


def run_size(modules: int, tmp: Path) -> dict[str, Any]:
    root = tmp / f"repo{modules}"
    big = generate(root, modules)
    settings = Settings.model_validate({
        "llm": {"provider": "scripted", "model": "oracle", "script_path": str(tmp / "unused.yaml"),
                "prices": {"oracle": {"input": 0, "output": 0}}, "cache": {"enabled": False}},
        "file_system": {"workspace_path": str(root), "backup_dir": str(tmp / f"backups{modules}")},
        "memory": {"database_path": str(tmp / f"db{modules}.sqlite")},
        "logging": {"file": None, "level": "WARNING"},
        "testing": {"timeout": 600},
        "agents": {"tools": {"enabled": True}},
    })
    live = LiveConfig(settings)
    db = Database(settings.memory.database_path)
    memory = MemoryStore(db)
    oracle = Oracle()
    llm = LLMClient(live, memory, [oracle])
    fs = FileSystemManager.from_config(settings.file_system)
    git = GitManager.from_config(settings.git, root, ())
    git.ensure_repository(None)
    runner = TestRunner.from_config(settings.testing, root)
    ws = Workspace(live=live, fs=fs, git=git, runner=runner, deployer=None, memory=memory)
    test_seconds = 0.0
    real_run = runner.run_tests

    def timed_run(paths: Any = None) -> Any:
        nonlocal test_seconds
        t0 = time.perf_counter()
        try:
            return real_run(paths)
        finally:
            test_seconds += time.perf_counter() - t0

    runner.run_tests = timed_run  # type: ignore[method-assign]
    dev = DeveloperAgent(llm, ContextManager(live, memory, TaskStore(db)), memory, live)
    stages = ToolStages(ws, qa=None, developer=dev, llm=llm)  # type: ignore[arg-type]
    task = Task(id=f"bench{modules}", type=TaskType.CODE, title="Give target_function a factor",
                description="pkg.big.target_function(value, factor=2) scales by factor; its callers pass 3")
    suite = CodePayload(test_path="tests/test_target.py", requirements=["factor argument"], modules=["pkg/big.py"])
    started = time.perf_counter()
    problem = None
    try:
        change = stages.code_change(task, "main", suite, feedback=[])
    except Exception as e:  # the figure to print is why it failed
        change, problem = None, f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - started
    rows = db.query("SELECT tokens_in FROM llm_calls WHERE task_id = ? AND error IS NULL", (task.id,))
    edited = {f.path: f.content for f in change.files} if change else {}
    expected_big = big.replace(TARGET_OLD, TARGET_NEW)
    if problem is None:
        if edited.get("pkg/big.py") != expected_big:
            problem = "pkg/big.py is not byte-identical outside target_function"
        elif sorted(edited) != ["pkg/big.py", "pkg/caller_a.py", "pkg/caller_b.py"]:
            problem = f"changed {sorted(edited)}"
    db.close()
    llm.close()
    return {"modules": modules, "largest": max((r["tokens_in"] for r in rows), default=0),
            "total": sum(r["tokens_in"] for r in rows), "calls": len(rows), "ok": problem is None,
            "problem": problem, "outside_model": wall - oracle.seconds, "tests": test_seconds,
            "big_kb": len(big) / 1024}


def main(argv: list[str] | None = None) -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="growing-repo-") as tmp:
        for n in sizes:
            r = run_size(n, Path(tmp))
            results.append(r)
            print(f"{n:>5} modules: largest prompt {r['largest']:>6} tokens, total {r['total']:>7} tokens, "
                  f"{r['calls']} tool calls, edits {'ok' if r['ok'] else 'FAILED: ' + str(r['problem'])}, "
                  f"outside the model {r['outside_model']:.2f} s (test runs {r['tests']:.2f} s); "
                  f"big module {r['big_kb']:.1f} KB", flush=True)
    first, last = results[0], results[-1]
    ratio = last["largest"] / first["largest"] if first["largest"] else float("inf")
    failed = [r for r in results if not r["ok"]]
    met = ratio <= 1.5 and not failed
    print(f"target: largest prompt at {last['modules']} within 1.5x of {first['modules']}, 40 KB edit ok: "
          f"{'MET' if met else 'MISSED'}")
    edit = "ok" if not failed else f"FAILED: {failed[0]['problem']}"
    print(f"growing_repo: prompt ratio {last['modules']}/{first['modules']} = {ratio:.2f}; 40KB edit: {edit}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
