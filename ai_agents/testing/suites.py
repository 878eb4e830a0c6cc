"""What QA's test file must look like, and which test ids it defines, for either framework.

pytest files (``tests/test_<name>.py``) are read with ``ast`` (verdict.py); jest files
(``tests/<name>.test.js`` or ``.ts``) with the scanner of jest_verdict.py. Both are read by the
daemon, outside the sandbox, from the committed file.
"""

from __future__ import annotations

from ai_agents.errors import WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.testing.jest_verdict import expected_jest_ids, is_jest_file
from ai_agents.testing.verdict import expected_test_ids

JS_MODULE_SUFFIXES = (".js", ".ts", ".cjs", ".mjs")


def expected_ids(path: str, source: str) -> list[str]:
    """The ids of the tests ``source`` (the file ``path``) defines, each of which must run and pass."""
    if is_jest_file(path):
        return expected_jest_ids(path, source)[0]
    return expected_test_ids(path, source)


def jest_suite_problems(test_path: str, module_path: str, test_code: str, tests_dir: str) -> list[str]:
    """Why QA's jest suite is unusable (empty if it is fine)."""
    problems = []
    try:
        test = normalize(test_path).as_posix()
    except WorkspaceError as e:
        return [f"test_path: {e}"]
    if test != test_path.strip() or not test.startswith(f"{tests_dir}/") or not is_jest_file(test):
        problems.append(f"test_path must be {tests_dir}/<name>.test.js (or .ts), not {test_path!r}")
    try:
        module = normalize(module_path).as_posix()
    except WorkspaceError as e:
        problems.append(f"module_path: {e}")
    else:
        if not module.endswith(JS_MODULE_SUFFIXES) or module.startswith(f"{tests_dir}/"):
            problems.append(f"module_path must be a .js or .ts file outside {tests_dir}/, not {module_path!r}")
    ids, unreadable = expected_jest_ids(test, test_code)
    problems += unreadable[:5]
    if not ids:
        problems.append("no test()/it() call with a plain string name was found in the file")
    return problems
