"""GitManager on real repositories: init, per-agent commits, secret scan, merges, recovery."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ai_agents.domain import Role
from ai_agents.errors import GitOperationError, MergeConflictError, SecretDetectedError
from ai_agents.git import GitManager

FAKE_KEY = "sk-test" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5"  # fake, 30 characters after the prefix


def write(gm: GitManager, rel: str, text: str) -> None:
    path = gm.repo_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_init_makes_first_commit_on_branch(git_cli, tmp_path: Path) -> None:
    gm = GitManager(tmp_path / "new", branch="trunk")
    gm.ensure_repository(None)
    assert gm.current_branch() == "trunk" and gm.is_clean()
    (entry,) = gm.log(5)
    assert entry["author_name"] == "System Agent" and entry["author_email"] == "system@ai-agents.local"
    assert set(git_cli(gm.repo_path, "ls-files").split()) == {".gitignore", "README.md"}
    gm.ensure_repository(None)  # idempotent on an existing repository
    assert len(gm.log(5)) == 1


def test_init_commits_files_already_there(git_cli, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "existing.py").write_text("X = 1\n")
    gm = GitManager(tmp_path / "ws")
    gm.ensure_repository(None)
    assert "existing.py" in git_cli(gm.repo_path, "ls-files") and gm.is_clean()


@pytest.mark.parametrize(("agent", "name", "email"), [
    (Role.DEVELOPER, "Developer Agent", "developer@ai-agents.local"),
    (Role.QA, "QA Agent", "qa@ai-agents.local"),
    ("tech_lead", "Tech Lead Agent", "tech_lead@ai-agents.local"),
    ("Tech Lead", "Tech Lead Agent", "tech_lead@ai-agents.local"),
    ("release bot", "Release Bot Agent", "release-bot@ai-agents.local"),
])
def test_commit_author_and_committer_per_agent(git_cli, repo: GitManager, agent: Role | str, name: str,
                                               email: str) -> None:
    write(repo, "a.txt", f"by {name}\n")
    sha = repo.commit("Add a", agent=agent, files=["a.txt"])
    # The machine's global identity (user.name in ~/.gitconfig) must not appear.
    assert git_cli(repo.repo_path, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip() == (
        f"{name} <{email}>|{name} <{email}>")


def test_commit_only_named_files_and_deletions(git_cli, repo: GitManager) -> None:
    write(repo, "keep.txt", "1\n")
    write(repo, "gone.txt", "1\n")
    repo.commit("two files", agent=Role.DEVELOPER)
    write(repo, "keep.txt", "2\n")
    write(repo, "other.txt", "unrelated\n")
    (repo.repo_path / "gone.txt").unlink()
    repo.add(["gone.txt"])  # already staged as deleted: commit must still work
    sha = repo.commit("update keep, delete gone", agent=Role.DEVELOPER, files=["keep.txt", "gone.txt"])
    assert sorted(git_cli(repo.repo_path, "show", "--name-status", "--format=", sha).split()) == [
        "D", "M", "gone.txt", "keep.txt"]
    assert git_cli(repo.repo_path, "status", "--porcelain").strip() == "?? other.txt"
    assert repo.commit("again", agent=Role.DEVELOPER, files=["keep.txt"]) == sha  # nothing new: HEAD
    repo.add(["other.txt"])
    assert repo.commit("no files", agent=Role.DEVELOPER, files=[]) == sha
    assert git_cli(repo.repo_path, "status", "--porcelain").strip() == "A  other.txt"  # still staged


def test_add_then_diff_staged(repo: GitManager) -> None:
    write(repo, "mod.py", "def f():\n    return 1\n")
    repo.add(["mod.py"])
    assert "+def f():" in repo.diff(staged=True)
    repo.commit("mod", agent=Role.DEVELOPER, files=["mod.py"])
    assert repo.diff(staged=True) == "" and repo.is_clean()


def test_git_paths_refused(repo: GitManager) -> None:
    for bad in [".git/config", "/etc/passwd", "../x"]:
        with pytest.raises(GitOperationError, match="refused path"):
            repo.add([bad])


def test_commit_with_fake_key_refused_naming_file_and_line(git_cli, repo: GitManager) -> None:
    head = repo.head_sha()
    write(repo, "src/settings.py", f'DEBUG = True\nTIMEOUT = 3\nOPENAI_KEY = "{FAKE_KEY}"\n')
    repo.add(["src/settings.py"])
    with pytest.raises(SecretDetectedError) as info:
        repo.commit("Add settings", agent=Role.DEVELOPER, files=["src/settings.py"])
    message = str(info.value)
    assert "src/settings.py line 3" in message and FAKE_KEY not in message and "sk-test" not in message
    assert repo.head_sha() == head
    assert git_cli(repo.repo_path, "diff", "--cached", "--name-only") == ""  # unstaged again


@pytest.mark.parametrize(("rel", "text", "where"), [
    ("conf.py", "X = 1\nPASSWORD = 'configured-secret-value-123'\n", "conf.py line 2 (configured secret value)"),
    (".env", "A=1\n", ".env (.env file)"),
    ("deploy/id_rsa", "k\n", "deploy/id_rsa (private key file)"),
    ("k.pem", "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n", "k.pem line 1"),
    ("app.json", '{"name": "x",\n "api_key": "abcdef0123456789"}\n', "app.json line 2"),
])
def test_secret_shapes_refused(repo: GitManager, rel: str, text: str, where: str) -> None:
    write(repo, ".gitignore", "")  # the default one ignores .env: test the scan itself
    write(repo, rel, text)
    with pytest.raises(SecretDetectedError, match=where.replace("(", r"\(").replace(")", r"\)")):
        repo.commit("add", agent=Role.DEVELOPER, files=[rel])
    assert len(repo.log(10)) == 1


def test_secret_in_message_refused_and_code_reading_secrets_allowed(git_cli, repo: GitManager) -> None:
    write(repo, "client.py",
          'import os\nTOKEN = os.environ["API_TOKEN"]\nheaders = {"Authorization": f"Bearer {TOKEN}"}\n')
    write(repo, ".env.example", "API_TOKEN=\n")
    with pytest.raises(SecretDetectedError, match="commit message line 3"):
        repo.commit(f"Add client\n\nused key {FAKE_KEY}", agent=Role.DEVELOPER)
    sha = repo.commit("Add client for task-implement-the-" "string-utilities-module", agent=Role.DEVELOPER)
    assert "client.py" in git_cli(repo.repo_path, "show", "--name-only", "--format=", sha)


def test_hooks_in_repository_never_run(repo: GitManager) -> None:
    hooks = repo.repo_path / ".git" / "hooks"
    marker = repo.repo_path.parent / "hook-ran"
    for name in ("pre-commit", "post-commit", "commit-msg", "pre-merge-commit", "post-merge", "post-checkout"):
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> {marker}\n")
        (hooks / name).chmod(0o755)
    write(repo, "a.txt", "a\n")
    repo.commit("a", agent=Role.DEVELOPER)
    repo.create_branch("b")
    repo.checkout("b")
    write(repo, "b.txt", "b\n")
    repo.commit("b", agent=Role.DEVELOPER)
    repo.checkout("main")
    repo.merge_branch("b")
    assert not marker.exists()


def _diverge(repo: GitManager, text_main: str, text_feature: str) -> None:
    write(repo, "shared.txt", "base\n")
    repo.commit("base", agent=Role.DEVELOPER)
    repo.create_branch("feature")
    repo.checkout("feature")
    write(repo, "shared.txt", text_feature)
    repo.commit("feature change", agent=Role.DEVELOPER)
    repo.checkout("main")
    write(repo, "shared.txt", text_main)
    repo.commit("main change", agent=Role.QA)


def test_merge_conflict_aborted_and_repository_clean(git_cli, repo: GitManager) -> None:
    _diverge(repo, "main\n", "feature\n")
    repo.checkout("feature")
    head = repo.head_sha()
    with pytest.raises(MergeConflictError) as info:
        repo.merge_branch("feature", into="main", agent=Role.TECH_LEAD)
    assert info.value.conflicts == ["shared.txt"] and "shared.txt" in str(info.value)
    assert git_cli(repo.repo_path, "status", "--porcelain") == ""
    assert not (repo.repo_path / ".git" / "MERGE_HEAD").exists()
    assert repo.current_branch() == "feature" and repo.head_sha() == head  # back where it started


def test_clean_merge_is_no_ff(git_cli, repo: GitManager) -> None:
    repo.create_branch("topic")
    repo.checkout("topic")
    write(repo, "t.txt", "t\n")
    topic_sha = repo.commit("topic work", agent=Role.DEVELOPER)
    repo.checkout("main")
    sha = repo.merge_branch("topic", message="Merge topic", agent=Role.TECH_LEAD, trailers={"Task-Id": "7"})
    parents = git_cli(repo.repo_path, "log", "-1", "--format=%P", sha).split()
    assert len(parents) == 2 and parents[1] == topic_sha  # a fast-forward was possible, yet a merge commit
    assert repo.log(1)[0]["author_name"] == "Tech Lead Agent" and "Task-Id: 7" in repo.log(1)[0]["message"]
    assert repo.is_merged("topic", "main") and repo.current_branch() == "main"


def test_merge_refused_with_uncommitted_changes(repo: GitManager) -> None:
    repo.create_branch("x")
    write(repo, "README.md", "changed\n")
    with pytest.raises(GitOperationError, match="uncommitted"):
        repo.merge_branch("x")
    repo.discard_changes()
    assert repo.is_clean()


def test_branch_queries(repo: GitManager) -> None:
    with pytest.raises(GitOperationError, match="not a valid branch name"):
        repo.create_branch("bad..name")
    repo.create_branch("feat", from_ref="main")
    assert repo.branch_exists("feat") and not repo.branch_exists("nope")
    with pytest.raises(GitOperationError, match="already exists"):
        repo.create_branch("feat")
    assert [e["message"] for e in repo.log(5, branch="feat")] == ["Initialise the workspace repository"]


def test_recover_stale_lock_and_stuck_merge(repo: GitManager) -> None:
    _diverge(repo, "main\n", "feature\n")
    subprocess.run(["git", "-C", str(repo.repo_path), "merge", "feature"], capture_output=True)  # a crash mid-merge
    assert (repo.repo_path / ".git" / "MERGE_HEAD").exists()
    with pytest.raises(GitOperationError, match="merge is in progress"):
        repo.commit("x", agent=Role.DEVELOPER)
    (repo.repo_path / ".git" / "index.lock").write_text("")
    assert repo.recover() == ["removed stale index.lock", "aborted merge"]
    assert repo.is_clean() and not (repo.repo_path / ".git" / "MERGE_HEAD").exists()
    assert repo.recover() == []


def test_recover_keeps_lock_held_by_a_running_process(repo: GitManager) -> None:
    lock = repo.repo_path / ".git" / "index.lock"
    lock.write_text("")
    with open(lock) as held:  # like a git process in the middle of writing the index
        holder = subprocess.Popen(["sleep", "30"], stdin=held)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _has_open(holder.pid, lock):
            time.sleep(0.01)
        assert repo.recover() == [] and lock.exists()
    finally:
        holder.kill()
        holder.wait()
    assert repo.recover() == ["removed stale index.lock"]


def _has_open(pid: int, path: Path) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/0") == str(path.resolve())
    except OSError:
        return False


def test_a_reused_detached_worktree_loses_the_stale_lock_a_killed_merge_left(repo: GitManager, tmp_path: Path) -> None:
    """The merge queue's worktree after kill -9 mid-merge: its own index.lock (under .git/worktrees/<name>)
    must not fail every later merge of the queue."""
    main = repo.rev("main")
    path = tmp_path / "queue-worktree"
    cmd = repo.ensure_worktree(path, main)
    git_dir = Path(cmd.run("rev-parse", "--absolute-git-dir").stdout.strip())
    assert git_dir != repo.repo_path / ".git"  # the worktree's own git directory
    (git_dir / "index.lock").write_text("")
    with pytest.raises(GitOperationError):
        cmd.run("checkout", "-q", "--detach", "-f", main)  # what the queue hit: every checkout fails
    again = repo.ensure_worktree(path, main)
    assert not (git_dir / "index.lock").exists()
    assert again.run("rev-parse", "HEAD").stdout.strip() == main


def test_a_git_command_past_its_time_limit_is_killed_with_what_it_started(tmp_path: Path) -> None:
    """A hung git call ends at its limit with its children (an alias's shell here), and says why."""
    from ai_agents.git.cmd import GitCmd

    marker = f"ai-agents-hung-git-{os.getpid()}"
    cmd = GitCmd(tmp_path)
    started = time.monotonic()
    result = cmd.run("-c", f"alias.hang=!sleep 30 && echo {marker}", "hang", timeout=1, check=False)
    assert time.monotonic() - started < 15
    assert not result.ok and "did not complete in 1 seconds" in result.stderr
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert not left, f"the alias's shell outlived the git call: {left}"
    with pytest.raises(GitOperationError, match="did not complete"):
        cmd.run("-c", f"alias.hang=!sleep 30 && echo {marker}", "hang", timeout=1)


def test_a_merge_made_as_objects_is_the_merge_git_makes_in_a_worktree(git_cli, repo: GitManager,
                                                                      tmp_path: Path) -> None:
    """merge_commit (merge-tree, no worktree) and merge_detached (git merge --no-ff) make the same tree, the
    same parents and the same identity; a conflict is None there and the hunks here."""
    main = repo.current_branch()
    base = repo.rev(main)
    repo.create_branch("feature", from_ref=main)
    repo.checkout("feature")
    write(repo, "feature.py", "x = 1\n")
    write(repo, "shared.txt", "feature\n")
    tip = repo.commit("feature work", agent=Role.DEVELOPER)
    repo.checkout(main)
    write(repo, "other.py", "y = 2\n")
    moved = repo.commit("main moved", agent=Role.DEVELOPER)
    trailers = {"Task-Id": "t1", "Agent": "Tech Lead"}

    made = repo.merge_commit(moved, tip, message="Merge feature", trailers=trailers)
    assert made is not None and made.tree == repo.commit_and_tree(made.commit)[1]
    made = made.commit
    cmd = repo.ensure_worktree(tmp_path / "wt", moved)
    merged = repo.merge_detached(cmd, moved, tip, message="Merge feature", trailers=trailers)
    assert made is not None  # the same commit, byte for byte, when both are made within one second; always:
    for fmt in ("%T", "%P", "%an <%ae>", "%cn <%ce>", "%B"):  # one tree, the same parents, agent and message
        assert git_cli(repo.repo_path, "show", "-s", f"--format={fmt}", made) == \
            git_cli(repo.repo_path, "show", "-s", f"--format={fmt}", merged)
    assert repo.current_branch() == main and repo.rev(main) == moved  # no ref moved, nothing checked out

    write(repo, "shared.txt", "main\n")
    clash = repo.commit("main changed the same file", agent=Role.DEVELOPER)
    assert repo.merge_commit(clash, tip, message="Merge feature", trailers=trailers) is None
    with pytest.raises(MergeConflictError) as conflict:
        repo.merge_detached(cmd, clash, tip, message="Merge feature", trailers=trailers)
    assert conflict.value.conflicts == ["shared.txt"] and base


def test_revs_and_the_fast_forward_that_is_a_compare_and_swap(git_cli, repo: GitManager) -> None:
    main = repo.rev("main")
    assert main is not None
    repo.create_branch("feat", from_ref="main")
    repo.checkout("feat")
    write(repo, "a.txt", "a\n")
    ahead = repo.commit("Add a", agent=Role.DEVELOPER, files=["a.txt"])
    assert repo.revs("main", "feat", ahead) == [main, ahead, ahead]
    assert repo.revs("main", "gone", ahead[:12]) == [main, None, ahead]  # one missing: each read alone
    # feat is checked out: the fast-forward of main switches to it first; main is not at `expect`: nothing moves.
    assert not repo.fast_forward(ahead, branch="main", expect=ahead)
    assert repo.current_branch() == "main" and repo.rev("main") == main
    assert repo.fast_forward(ahead, branch="main", expect=main)
    assert repo.rev("main") == ahead and (repo.repo_path / "a.txt").read_text() == "a\n"
    assert git_cli(repo.repo_path, "status", "--porcelain").strip() == ""
    assert repo.fast_forward(ahead, branch="main")  # already there (a node following the remote): nothing to do


def test_a_snapshot_is_the_commit_that_would_be_made_with_nothing_moved_or_staged(git_cli, repo: GitManager) -> None:
    head = repo.rev("HEAD")
    write(repo, "staged.txt", "staged\n")
    repo.add(["staged.txt"])  # someone else's staged work: a snapshot leaves the index as it is
    write(repo, "a.py", "x = 1\n")
    write(repo, "b.py", "y = 2\n")  # not named: not in the snapshot
    snap = repo.snapshot(["a.py"], agent=Role.DEVELOPER)
    assert snap is not None and repo.rev("HEAD") == head
    assert git_cli(repo.repo_path, "rev-parse", f"{snap}^").strip() == head
    assert git_cli(repo.repo_path, "diff", "--name-only", head, snap).split() == ["a.py"]
    assert git_cli(repo.repo_path, "diff", "--cached", "--name-only").split() == ["staged.txt"]
    assert not git_cli(repo.repo_path, "branch", "--contains", snap).strip()  # no ref points to it
    made = repo.commit("Add a", agent=Role.DEVELOPER, files=["a.py"])
    assert repo.commit_and_tree(made)[1] == repo.commit_and_tree(snap)[1] and made != snap
    assert repo.commit_and_tree("no-such-ref") == (None, None)
