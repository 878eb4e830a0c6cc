"""The attempt's test selection: QA's files and the tests importing a changed module."""

from __future__ import annotations

from ai_agents.testing.selection import affected_tests, imported, module_names

TESTS = {"tests/test_a.py": "from textutils import slugify\n", "tests/test_b.py": "import pkg\n",
         "tests/test_c.py": "from other import x\n", "tests/test_d.py": "from pkg.sub import f\n",
         "tests/test_e.py": "from pkg import sub\n", "tests/test_broken.py": "def (:\n"}


def test_a_changed_module_selects_the_tests_importing_it_and_qas_files_always():
    assert affected_tests(TESTS, ["textutils.py"], ["tests/test_q.py"]) == ["tests/test_a.py", "tests/test_q.py"]
    assert affected_tests(TESTS, ["pkg/sub.py"]) == ["tests/test_b.py", "tests/test_d.py", "tests/test_e.py"]
    assert affected_tests(TESTS, ["README.md"], ["tests/test_q.py"]) == ["tests/test_q.py"]


def test_module_names_and_imports():
    assert module_names("pkg/__init__.py") == {"pkg"} and module_names("a/b.py") == {"a.b"}
    assert module_names("data.json") == set()
    assert imported("from pkg import sub\nimport os.path\nfrom . import x\n") == {"pkg", "pkg.sub", "os.path"}
    assert imported("def (:") == set()
