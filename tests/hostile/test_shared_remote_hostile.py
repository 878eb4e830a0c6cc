"""Hostile: with ``git.shared_remote`` the daemon pushes to a remote; the model's tests must not. QA's
tests (run in attempts and in the queue) try to write a ref and a hook into the bare remote, whose
path they are given outright, and to push to it with git: nothing reaches it but the daemon's own
pushes (the task's branch, then main by the queue's leased push).
"""

from __future__ import annotations

import pytest

from ai_agents.domain import TaskStatus
from ai_agents.llm.script import Script
from tests.chaos.scenario import chaos_rules, helper_names, helper_test_code
from tests.hostile.harness import HAS_BWRAP
from tests.mainline import git
from tests.merge_queue_remote.nodes import bare_remote, build_node, run_helper_task, task_merges

pytestmark = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not usable here: nothing hides the remote")

ATTACK = """

def test_reach_the_remote():
    import subprocess
    for path in ("{remote}/refs/heads/pwned", "{remote}/hooks/post-update", "{remote}/HEAD"):
        try:
            with open(path, "w") as fh:
                fh.write("ref: refs/heads/pwned\\n")
        except OSError:
            pass
    try:
        subprocess.run(["git", "push", "-f", "{remote}", "HEAD:refs/heads/pwned", "HEAD:refs/heads/main"],
                       capture_output=True, timeout=20)
    except OSError:
        pass
"""


def test_the_models_tests_cannot_reach_the_shared_remote(fake_llm, write_config, tmp_path):
    remote = bare_remote(tmp_path)
    hooks_before = sorted(p.name for p in (remote / "hooks").iterdir())
    names = helper_names(1)
    rules = chaos_rules(names)
    for rule in rules:  # QA's file gets the attack beside the helper's real tests
        if rule["when"].get("schema") == "TestSuite" and names[0] in str(rule["when"].get("contains")):
            rule["reply"]["test_code"] = helper_test_code(names[0]) + ATTACK.format(remote=remote)
    fake_llm.set_script(Script.from_data({"rules": rules}))
    node = build_node(write_config, fake_llm, tmp_path, "a", remote)
    done, rows = run_helper_task(node, names[0])
    tested = [a["details"] for a in rows if a["activity"] == "code_tested"]
    assert done.status == TaskStatus.COMPLETED, done.error
    assert tested and tested[-1]["passed"] == 3  # the attack ran (and passed) with the helper's two tests
    heads = git(remote, "for-each-ref", "--format=%(refname)", "refs/heads").split()
    assert heads == ["refs/heads/main"]  # no branch pushed by the tests; the task's, merged, deleted once done
    assert (remote / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert sorted(p.name for p in (remote / "hooks").iterdir()) == hooks_before
    assert task_merges(remote) == [done.id]
