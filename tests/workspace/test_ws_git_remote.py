"""GitManager against real remotes: a bare repository, an unreachable URL, an https server asking for a token."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import structlog

from ai_agents.domain import Role
from ai_agents.errors import GitOperationError, GitRemoteError, MergeConflictError
from ai_agents.git import GitManager, check_git
from ai_agents.git.credentials import redact_url, split_credentials

TOKEN = "tok-" + "Zx9" * 8  # fake


def write(gm: GitManager, rel: str, text: str) -> None:
    (gm.repo_path / rel).write_text(text)


def state(gm: GitManager, git_cli) -> tuple[str, str, str]:
    """Everything a failed remote operation must leave unchanged."""
    return (git_cli(gm.repo_path, "show-ref"), git_cli(gm.repo_path, "status", "--porcelain"),
            git_cli(gm.repo_path, "rev-parse", "HEAD"))


@pytest.fixture
def pair(repo: GitManager, bare: Path, tmp_path: Path) -> tuple[GitManager, GitManager]:
    """``repo`` pushed to ``bare``, and a second clone of it (another machine)."""
    repo.ensure_repository(str(bare))
    repo.push("main")
    other = GitManager(tmp_path / "other", retry_base_delay=0.01)
    other.ensure_repository(str(bare))
    return repo, other


def test_push_then_pull_fast_forward(pair: tuple[GitManager, GitManager], bare: Path, git_cli) -> None:
    repo, other = pair
    assert git_cli(bare, "rev-parse", "main").strip() == repo.head_sha() == other.head_sha()
    write(other, "new.txt", "from the other clone\n")
    pushed = other.commit("Add new.txt", agent=Role.QA)
    other.push()
    assert repo.pull() == pushed
    assert (repo.repo_path / "new.txt").read_text() == "from the other clone\n"
    assert repo.log(1)[0]["author_name"] == "QA Agent"


def test_pull_ff_refuses_diverged_history_unchanged(pair: tuple[GitManager, GitManager], git_cli) -> None:
    repo, other = pair
    write(other, "a.txt", "remote\n")
    other.commit("remote work", agent=Role.QA)
    other.push()
    write(repo, "b.txt", "local\n")
    repo.commit("local work", agent=Role.DEVELOPER)
    before = git_cli(repo.repo_path, "rev-parse", "HEAD")
    with pytest.raises(GitOperationError, match="cannot fast-forward"):
        repo.pull()
    assert git_cli(repo.repo_path, "rev-parse", "HEAD") == before and repo.is_clean()
    with pytest.raises(GitOperationError, match="rejected"):
        repo.push()  # non-fast-forward: not transient, no retries


def test_pull_rebase_puts_local_work_on_top(pair: tuple[GitManager, GitManager], tmp_path: Path) -> None:
    repo, other = pair
    write(other, "a.txt", "remote\n")
    remote_sha = other.commit("remote work", agent=Role.QA)
    other.push()
    write(repo, "b.txt", "local\n")
    repo.commit("local work", agent=Role.DEVELOPER)
    rebasing = GitManager(repo.repo_path, pull_strategy="rebase", retry_base_delay=0.01)
    rebasing.pull()
    top, below = rebasing.log(2)
    assert top["message"] == "local work" and top["author_name"] == "Developer Agent"
    assert below["sha"] == remote_sha and rebasing.is_clean()


def test_pull_rebase_conflict_aborted(pair: tuple[GitManager, GitManager], git_cli) -> None:
    repo, other = pair
    write(other, "README.md", "remote version\n")
    other.commit("remote readme", agent=Role.QA)
    other.push()
    write(repo, "README.md", "local version\n")
    repo.commit("local readme", agent=Role.DEVELOPER)
    rebasing = GitManager(repo.repo_path, pull_strategy="rebase", retry_base_delay=0.01)
    before = state(repo, git_cli)
    with pytest.raises(MergeConflictError) as info:
        rebasing.pull()
    assert info.value.conflicts == ["README.md"]
    _refs_with_fetched_remote, status, head = state(repo, git_cli)
    assert (status, head) == before[1:] and not (repo.repo_path / ".git" / "rebase-merge").exists()


def test_push_to_unreachable_remote_raises_after_retries(repo: GitManager, git_cli, tmp_path: Path) -> None:
    gm = GitManager(repo.repo_path, push_retries=2, retry_base_delay=0.01)
    gm.ensure_repository("http://127.0.0.1:9/nowhere.git")  # port 9: nothing listens
    write(gm, "x.txt", "x\n")
    gm.commit("x", agent=Role.DEVELOPER)
    before = state(gm, git_cli)
    with structlog.testing.capture_logs() as logs, pytest.raises(GitRemoteError, match="after 3 attempts"):
        gm.push("main")
    assert [e["attempt"] for e in logs if e["event"] == "git_remote_retry"] == [2, 3]
    assert state(gm, git_cli) == before
    with pytest.raises(GitRemoteError):
        gm.pull()
    assert state(gm, git_cli) == before


class _AuthRecorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        if not auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
        else:
            self.seen.append(auth)
            self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return  # keep pytest output clean


@pytest.fixture
def https_like_remote() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthRecorder)
    _AuthRecorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/team/app.git"
    server.shutdown()
    server.server_close()


def test_token_sent_by_askpass_never_stored_or_logged(repo: GitManager, https_like_remote: str,
                                                      git_cli, capsys: pytest.CaptureFixture[str]) -> None:
    gm = GitManager(repo.repo_path, push_retries=0, username="agent-bot", token=TOKEN)
    gm.ensure_repository(https_like_remote)
    with structlog.testing.capture_logs() as logs, pytest.raises(GitRemoteError) as info:
        gm.push("main")
    expected = "Basic " + base64.b64encode(f"agent-bot:{TOKEN}".encode()).decode()
    assert _AuthRecorder.seen and set(_AuthRecorder.seen) == {expected}
    assert TOKEN not in str(info.value) and TOKEN not in repr(logs) and TOKEN not in capsys.readouterr().out
    assert TOKEN not in (repo.repo_path / ".git" / "config").read_text()
    assert "credential" not in git_cli(repo.repo_path, "config", "--list", "--local")


def test_token_in_configured_url_is_stripped(tmp_path: Path, https_like_remote: str) -> None:
    url = https_like_remote.replace("http://", f"http://bot:{TOKEN}@")
    assert split_credentials(url) == (https_like_remote, "bot", TOKEN)
    assert TOKEN not in redact_url(f"fatal: unable to access '{url}'")
    gm = GitManager(tmp_path / "cloned", push_retries=0)
    with pytest.raises(GitRemoteError) as info:
        gm.ensure_repository(url)
    assert TOKEN not in str(info.value)
    expected = "Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()
    assert _AuthRecorder.seen == [expected]
    assert not (tmp_path / "cloned" / ".git").exists()


def test_clone_of_empty_remote_gets_first_commit(bare: Path, tmp_path: Path) -> None:
    gm = GitManager(tmp_path / "fresh")
    gm.ensure_repository(str(bare))
    assert gm.current_branch() == "main" and len(gm.log(5)) == 1 and gm.has_remote()
    gm.push()
    assert gm.remote_reachable()


def test_doctor_checks(repo: GitManager, bare: Path, tmp_path: Path) -> None:
    local = {c.name: c for c in check_git(repo)}
    assert local["git"].ok and local["git-ident"].ok and "local repository only" in local["git-remote"].detail
    repo.ensure_repository(str(bare))
    assert all(c.ok for c in check_git(repo))
    unreachable = GitManager(repo.repo_path, remote_name="gone")
    (unreachable_check,) = [c for c in check_git(unreachable) if c.name == "git-remote"]
    assert unreachable_check.ok  # no remote named "gone" at all: local only
    repo._cmd.run("remote", "add", "gone", "http://127.0.0.1:9/x.git")
    (unreachable_check,) = [c for c in check_git(unreachable, remote_timeout=5) if c.name == "git-remote"]
    assert not unreachable_check.ok and "not reachable" in unreachable_check.detail
    # A fresh install: no repository yet is not a failure when the daemon's start can make one.
    missing = check_git(GitManager(tmp_path / "nothing-here"))
    assert [c.ok for c in missing] == [True] and "does not exist yet" in missing[0].detail
    assert "creates it at start" in missing[0].detail
    (tmp_path / "plain").mkdir()
    to_clone = check_git(GitManager(tmp_path / "plain"), repository_url=str(bare))
    assert [c.ok for c in to_clone] == [True] and "clones git.repository_url" in to_clone[0].detail
    (tmp_path / "plain" / "notes.txt").write_text("x")
    not_a_repo = check_git(GitManager(tmp_path / "plain"), repository_url=str(bare))
    assert [c.ok for c in not_a_repo] == [False] and "cannot clone" in not_a_repo[0].detail
    # What doctor promised is what the start does.
    GitManager(tmp_path / "nothing-here").ensure_repository()
    assert all(c.ok for c in check_git(GitManager(tmp_path / "nothing-here")))
