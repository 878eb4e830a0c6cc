"""The tools' own rules, on plain text: edits, the repository map, reads and searches."""

from __future__ import annotations

import pytest

from ai_agents.agents.tools.edits import EditError, apply_edit
from ai_agents.agents.tools.registry import ToolRegistry
from ai_agents.agents.tools.repo_map import RepoMap, estimate_tokens
from ai_agents.agents.tools.view import CodeView, WritePolicy
from ai_agents.config.models import ToolsConfig
from ai_agents.domain import Role

SOURCE = "class A:\n    def run(self):\n        return 1\n\n\nclass B:\n    def run(self):\n        return 1\n"


def test_exact_edit_must_match_once():
    with pytest.raises(EditError, match=r"matches 2 places in m.py \(lines 3, 8\)"):
        apply_edit("m.py", SOURCE, "        return 1", "        return 2")
    new, how = apply_edit("m.py", SOURCE, "class B:\n    def run(self):\n        return 1",
                          "class B:\n    def run(self):\n        return 2")
    assert new == SOURCE[: SOURCE.rindex("1")] + "2\n" and how == "replaced at line 6"


def test_whitespace_tolerant_only_when_unambiguous():
    # Indented wrongly: matches both classes' bodies when whitespace is ignored -> refused.
    with pytest.raises(EditError, match=r"2 places in m\.py when whitespace is ignored"):
        apply_edit("m.py", SOURCE, "def run(self):\n    return 1", "def run(self):\n    return 3")
    with pytest.raises(EditError, match="indentation differs unevenly"):
        apply_edit("m.py", SOURCE, "class B:\ndef run(self):\n  return 1", "class B:\ndef run(self):\n  return 3")
    # Shifted as a whole (copied from a quote, say): re-indented to the file's.
    new, how = apply_edit("m.py", SOURCE, "  class B:\n      def run(self):\n          return 1",
                          "  class B:\n      def run(self):\n          return 3")
    assert "ignoring indentation" in how and new.endswith("class B:\n    def run(self):\n        return 3\n")


def test_missing_text_names_the_closest_line():
    with pytest.raises(EditError, match=r"not found in m.py. The closest text starts at line 6; its line 8 is "
                                        r"'        return 1' where your old text has '        return 9'"):
        apply_edit("m.py", SOURCE, "class B:\n    def run(self):\n        return 9", "x")


def test_repo_map_ranks_the_task_area_first_within_budget():
    files = {f"pkg/m{i:03d}.py": f"def helper_{i}(x):\n    return x\n" for i in range(300)}
    files["pkg/zz_pricing.py"] = "def apply_discount(price, rate):\n    return price * (1 - rate)\n"
    files["pkg/zz_cart.py"] = "from pkg.zz_pricing import apply_discount\n\n\ndef total(p):\n" \
                              "    return apply_discount(p, 0)\n"
    text = RepoMap().build(files, budget_tokens=200, words="Change apply_discount so the rate is capped")
    assert estimate_tokens(text) <= 260
    assert text.splitlines()[0] == "pkg/zz_pricing.py:"  # alphabetically last, ranked first
    assert "def apply_discount(price, rate)" in text and "more definitions not shown" in text
    assert "pkg/zz_cart.py" in text  # its caller comes next (the graph)


def registry(files: dict[str, str], role: Role = Role.DEVELOPER) -> ToolRegistry:
    def never(changed: dict[str, str], paths: list[str]):
        raise AssertionError("no test run here")
    return ToolRegistry(CodeView(files, WritePolicy(role)), ToolsConfig(search_max_results=5, read_max_lines=20),
                        run_tests=never)


def test_read_and_search_are_capped_and_clear():
    reg = registry({"a.py": "".join(f"x{i} = {i}\n" for i in range(100))})
    text, error, _ = reg.call("read_file", {"path": "a.py", "start_line": 101})
    assert error and text == "a.py has 100 lines; start_line 101 is past the end of the file"
    text, error, _ = reg.call("read_file", {"path": "a.py", "start_line": 90})
    assert not error and "  100| x99 = 99" in text and "end of file, 100 lines" in text
    text, error, _ = reg.call("read_file", {"path": "a.py"})
    assert text.count("\n") == 20 and "read on with start_line=21" in text
    text, error, _ = reg.call("search", {"pattern": r"x\d+ = 1"})
    assert text.splitlines()[0] == "a.py:2: x1 = 1" and "(6 more matches not shown" in text
    text, error, _ = reg.call("read_file", {"path": "b.py"})
    assert error and "b.py does not exist" in text
