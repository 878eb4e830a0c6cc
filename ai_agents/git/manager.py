"""GitManager: the agents' repository — commits per agent, branches, merges, remote sync.

Every operation either completes or leaves the repository as it found it: commits
are built in a temporary index and published with one compare-and-swap ref
update, merges and rebases are aborted on failure, and the index is never left
half-staged. One lock serialises this instance's operations (threads share it).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import git
import structlog
from pydantic import SecretStr

from ai_agents.config.models import GitConfig
from ai_agents.domain import Role
from ai_agents.errors import GitOperationError, SecretDetectedError, WorkspaceError
from ai_agents.file_system.paths import normalize
from ai_agents.git.branches import BranchMixin
from ai_agents.git.cmd import GitCmd
from ai_agents.git.credentials import Credentials, redact_url, split_credentials
from ai_agents.git.identity import SYSTEM_AGENT, actor_env, identity_for, role_of_email
from ai_agents.git.integration import IntegrationMixin
from ai_agents.git.message import CommitRecord, compose, parse_trailers
from ai_agents.git.remote import RemoteOps
from ai_agents.git.repo_state import EMPTY_TREE
from ai_agents.git.secrets_scan import SecretFinding, path_kind, scan_added_lines, scan_message
from ai_agents.git.shared import SharedRemoteMixin
from ai_agents.git.sync import SyncMixin

log = structlog.get_logger("ai_agents.git")

DEFAULT_GITIGNORE = """__pycache__/
*.py[cod]
.pytest_cache/
.mypy_cache/
.ruff_cache/
.venv/
venv/
node_modules/
build/
dist/
*.egg-info/
.env
.env.*
!.env.example
"""
DEFAULT_README = "# Workspace\n\nCode written test-first by the AI agents. Every commit names the agent that made it.\n"


class GitManager(BranchMixin, SyncMixin, IntegrationMixin, SharedRemoteMixin):
    """One git repository worked on by the agents (see module docstring for the guarantees)."""

    def __init__(
        self,
        repo_path: Path | str,
        *,
        branch: str = "main",
        remote_name: str = "origin",
        pull_strategy: str = "ff",
        push_retries: int = 3,
        identity_domain: str = "ai-agents.local",
        secret_values: Iterable[str] = (),
        username: str | None = None,
        token: str | SecretStr | None = None,
        credentials_env: str | None = None,
        retry_base_delay: float = 1.0,
        network_timeout: float = 120.0,
        keep_untracked: Iterable[str] = (),
    ):
        if pull_strategy not in ("ff", "rebase"):
            raise ValueError(f"pull_strategy must be 'ff' or 'rebase', not {pull_strategy!r}")
        self.repo_path = Path(repo_path)
        self.branch = branch
        self.remote_name = remote_name
        self.pull_strategy = pull_strategy
        self.identity_domain = identity_domain
        self.secret_values = tuple(s for s in secret_values if s)
        self.keep_untracked = tuple(dict.fromkeys(k.strip("/") for k in keep_untracked if k.strip("/")))
        self._credentials = Credentials(username, token, credentials_env)
        self._cmd = GitCmd(self.repo_path)
        self._remote = RemoteOps(self._cmd, self._credentials, retries=push_retries, base_delay=retry_base_delay,
                                 timeout=network_timeout)
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, cfg: GitConfig, repo_path: Path | str, secret_values: Iterable[str] = (),
                    keep_untracked: Iterable[str] = ()) -> GitManager:
        return cls(repo_path, branch=cfg.branch, remote_name=cfg.remote_name, pull_strategy=cfg.pull_strategy,
                   push_retries=cfg.push_retries, identity_domain=cfg.identity_domain,
                   secret_values=secret_values, username=cfg.username, token=cfg.token,
                   keep_untracked=keep_untracked)

    # --- setup -----------------------------------------------------------------------
    def clone(self, url: str, path: Path | str) -> git.Repo:
        """Clone ``url`` into ``path`` (credentials stripped from the URL that is stored)."""
        clean, user, password = split_credentials(url)
        self._credentials = self._credentials.with_url_credentials(user, password)
        self._remote.credentials = self._credentials
        repo = self._remote.clone(clean, Path(path))
        log.info("git_cloned", url=redact_url(clean), path=str(path))
        return repo

    def ensure_repository(self, repository_url: str | None = None) -> None:
        """Make ``repo_path`` a usable repository on ``branch``: open, clone, or init with a first commit."""
        with self._lock:
            if (self.repo_path / ".git").exists():
                if repository_url:
                    self._ensure_remote(repository_url)
            elif repository_url:
                if self.repo_path.exists() and any(self.repo_path.iterdir()):
                    raise GitOperationError(f"cannot clone into {self.repo_path}: it is not empty and not a repository")
                self.clone(repository_url, self.repo_path)
            else:
                self.repo_path.mkdir(parents=True, exist_ok=True)
                self._cmd.run("init", "-q", "-b", self.branch)
                log.info("git_initialised", path=str(self.repo_path), branch=self.branch)
            if not self._has_head():
                self._first_commit()
            elif self.current_branch() != self.branch and not self.branch_exists(self.branch):
                self._cmd.run("branch", self.branch, "HEAD")

    def _ensure_remote(self, url: str) -> None:
        clean, user, password = split_credentials(url)
        self._credentials = self._credentials.with_url_credentials(user, password)
        self._remote.credentials = self._credentials
        current = self._cmd.run("remote", "get-url", self.remote_name, check=False)
        if not current.ok:
            self._cmd.run("remote", "add", self.remote_name, clean)
            log.info("git_remote_added", remote=self.remote_name, url=redact_url(clean))
        elif current.stdout.strip() != clean:
            log.warning("git_remote_differs", remote=self.remote_name, configured=redact_url(clean),
                        actual=redact_url(current.stdout.strip()))

    def _first_commit(self) -> None:
        if self.current_branch() != self.branch:
            self._cmd.run("symbolic-ref", "HEAD", f"refs/heads/{self.branch}")
        for name, content in ((".gitignore", DEFAULT_GITIGNORE), ("README.md", DEFAULT_README)):
            if not (self.repo_path / name).exists():
                (self.repo_path / name).write_text(content, encoding="utf-8")
        # Everything already there goes in, so nothing is left untracked (discard_changes would delete it).
        self.commit("Initialise the workspace repository", agent=SYSTEM_AGENT)

    # --- staging and committing ---------------------------------------------------------
    def _paths(self, files: Iterable[str | os.PathLike[str]]) -> list[str]:
        try:
            return [normalize(f).as_posix() for f in files]
        except WorkspaceError as e:
            raise GitOperationError(f"refused path: {e}") from e

    def add(self, files: Iterable[str | os.PathLike[str]]) -> None:
        """Stage ``files`` (new, changed or deleted) in the index."""
        with self._lock:
            paths = self._paths(files)
            present = [p for p in paths if (self.repo_path / p).exists() or (self.repo_path / p).is_symlink()]
            missing = [p for p in paths if p not in present]
            if present:
                self._cmd.run("add", "-A", "--", *present)
            if missing:
                self._cmd.run("rm", "-q", "--cached", "--ignore-unmatch", "--", *missing)

    def commit(self, message: str, *, agent: Role | str, files: Sequence[str | os.PathLike[str]] | None = None,
               trailers: Mapping[str, str] | None = None) -> str:
        """Commit ``files`` (default: every change in the working tree) as ``agent``; return the sha.

        ``message`` is free text (a model's, as often as not): it is made inert (see
        :mod:`ai_agents.git.message`) and ``trailers``, the daemon's own records, are appended last.
        The commit is built in a temporary index, scanned for secrets, and published with
        a compare-and-swap on the branch: a refusal or failure changes nothing. If there
        is nothing to commit, the current HEAD sha is returned.
        """
        message = self._message(message, trailers)
        actor = identity_for(agent, self.identity_domain)  # explicit: never the machine's identity
        with self._lock:
            self._require_no_operation_in_progress()
            paths = self._paths(files) if files is not None else ["."]
            old, old_tree = self.commit_and_tree("HEAD")
            if not paths:  # e.g. every write of the attempt was refused
                if old is None:
                    raise GitOperationError("nothing to commit")
                log.info("git_nothing_to_commit", agent=actor.name, branch=self.current_branch())
                return old
            with tempfile.TemporaryDirectory(prefix="ai-agents-commit-") as tmp:
                index_env, tree = self._index_tree(tmp, old, paths)
                if not old and tree == EMPTY_TREE:
                    raise GitOperationError("nothing to commit")
                if old and tree == old_tree:
                    log.info("git_nothing_to_commit", agent=actor.name, branch=self.current_branch())
                    return old
                try:
                    self._scan_for_secrets(message, index_env, old)
                except SecretDetectedError:
                    # Unstage what the caller may have staged with add(): nothing half-done remains.
                    self._unstage(paths)
                    raise
                msg_file = os.path.join(tmp, "message")
                Path(msg_file).write_text(message, encoding="utf-8")
                args = ["commit-tree", tree, "-F", msg_file] + (["-p", old] if old else [])
                sha = self._cmd.run(*args, env=actor_env(actor)).stdout.strip()
            subject = message.strip().splitlines()[0][:100]
            # Compare-and-swap: if HEAD moved meanwhile (another process), refuse rather than lose its commit.
            self._cmd.run("update-ref", "-m", f"commit: {subject}", "HEAD", sha, old or "0" * 40)
            # The real index now matches the new commit for these paths; other staged work stays staged.
            reset = self._cmd.run("reset", "-q", "--", *paths, check=False)
            if not reset.ok:
                log.warning("git_index_sync_failed", error=self._cmd.explain(reset))
            log.info("git_commit", sha=sha, branch=self.current_branch(), agent=actor.name, files=len(paths),
                     subject=subject)
            return sha

    def _index_tree(self, tmp: str, old: str | None, paths: Sequence[str]) -> tuple[dict[str, str], str]:
        """``old``'s tree with ``paths`` (new, changed or deleted) as they are in the working tree, in a
        temporary index in ``tmp``: (the environment naming that index, the tree written)."""
        index_env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        if old:
            self._cmd.run("read-tree", old, env=index_env)
        existing = [p for p in paths if p == "." or (self.repo_path / p).exists() or (self.repo_path / p).is_symlink()]
        if existing:
            self._cmd.run("add", "-A", "--", *existing, env=index_env)
        gone = [p for p in paths if p not in existing]
        if gone:
            self._cmd.run("rm", "-q", "--cached", "--ignore-unmatch", "--", *gone, env=index_env)
        return index_env, self._cmd.run("write-tree", env=index_env).stdout.strip()

    def snapshot(self, files: Sequence[str | os.PathLike[str]], *, agent: Role | str) -> str | None:
        """HEAD with ``files`` as they are in the working tree now, as a commit object no ref points to: the
        tree :meth:`commit` would make of them, for a run ahead of the commit (the merge queue tests its merge
        candidate while the change is reviewed). Nothing moves and nothing is published, so neither the
        message checks nor the secret scan apply; git's gc drops it. None on a branch with no commit yet."""
        actor = identity_for(agent, self.identity_domain)
        with self._lock:
            paths = self._paths(files)
            old, _ = self.commit_and_tree("HEAD")
            if old is None:
                return None
            with tempfile.TemporaryDirectory(prefix="ai-agents-snapshot-") as tmp:
                _, tree = self._index_tree(tmp, old, paths)
                return self._cmd.run("commit-tree", tree, "-p", old, "-m", "ai-agents: snapshot under review",
                                     env=actor_env(actor)).stdout.strip()

    def _message(self, text: str, trailers: Mapping[str, str] | None) -> str:
        """The message to commit: ``text`` made inert, then the daemon's ``trailers``."""
        try:
            message, removed, neutralised = compose(text or "", trailers)
        except ValueError as e:
            raise GitOperationError(f"commit trailers refused: {e}") from e
        if not message.strip() or message.startswith("\n"):
            raise GitOperationError("commit message is empty")
        if removed or neutralised:
            log.warning("git_message_neutralised", control_chars=removed, trailer_like_lines=neutralised)
        return message

    def commit_records(self, n: int = 50, branch: str | None = None, *,
                       first_parent: bool = False) -> list[CommitRecord]:
        """The last ``n`` commits as the daemon recorded them: the agent from the author identity it
        set, the trailers from the block it appended last. Never read from the free text above.
        ``first_parent``: a task branch's own commits, not main's that a catch-up merge brought in."""
        records = []
        for entry in self.log(n, branch=branch, first_parent=first_parent):
            role = role_of_email(entry["author_email"], self.identity_domain)
            records.append(CommitRecord(sha=entry["sha"], author_email=entry["author_email"],
                                        agent=role.value if role else None,
                                        trailers=parse_trailers(entry["message"])))
        return records

    def _unstage(self, paths: Sequence[str]) -> None:
        """Make the real index match HEAD again for ``paths``."""
        if self._has_head():
            result = self._cmd.run("reset", "-q", "--", *paths, check=False)
        else:
            result = self._cmd.run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *paths, check=False)
        if not result.ok:
            log.warning("git_unstage_failed", error=self._cmd.explain(result))

    def _scan_for_secrets(self, message: str, index_env: dict[str, str], base: str | None) -> None:
        findings: list[SecretFinding] = list(scan_message(message, self.secret_values))
        against = [base] if base else []
        names = self._cmd.run("diff", "--cached", "--name-only", "-z", "--no-renames", "--diff-filter=d",
                              *against, env=index_env).stdout.split("\0")
        for path in filter(None, names):
            kind = path_kind(path)
            if kind:
                findings.append(SecretFinding(path, None, kind))
                continue
            diff = self._cmd.run("diff", "--cached", "--no-ext-diff", "--no-textconv", "--no-color", "--text",
                                 "-U0", "--no-renames", *against, "--", path, env=index_env).stdout
            findings.extend(scan_added_lines(path, diff, self.secret_values))
        if findings:
            where = "; ".join(f.describe() for f in findings[:5])
            more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
            log.warning("git_commit_refused_secret", findings=[f.describe() for f in findings[:20]])
            raise SecretDetectedError(f"commit refused, possible secret in {where}{more}; nothing was committed "
                                      "or left staged. Read secrets from the environment instead.")
