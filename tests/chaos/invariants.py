"""End checks after chaos: nothing lost, nothing done twice, nothing half-done.

Each check returns a list of problems (empty = fine) so a test can report every
broken invariant at once instead of stopping at the first.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from tests.chaos.scenario import FINAL, connect, task_rows, workspace

STUCK_MARKERS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply", "index.lock")


def git(ws: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=check).stdout


def stuck_markers(ws: Path) -> list[str]:
    """Operations half-way (merge, rebase...) and lock files (index.lock, HEAD.lock, refs/**/*.lock)."""
    git_dir = ws / ".git"
    found = [m for m in STUCK_MARKERS if (git_dir / m).exists()]
    locks = [*git_dir.glob("*.lock"), *(git_dir / "refs").rglob("*.lock")]
    return found + sorted({p.relative_to(git_dir).as_posix() for p in locks} - set(found))


def repository_problems(ws: Path, branch: str = "main") -> list[str]:
    """fsck clean, no operation stuck half-way, on ``branch``, working tree equal to HEAD."""
    problems = []
    fsck = subprocess.run(["git", "-C", str(ws), "fsck", "--full", "--no-dangling"], capture_output=True, text=True)
    bad = [ln for ln in (fsck.stdout + fsck.stderr).splitlines()
           if ln.split(" ")[0].rstrip(":") in ("error", "missing", "broken", "bad", "fatal")]
    if fsck.returncode != 0 or bad:
        problems.append(f"git fsck failed (exit {fsck.returncode}): {bad[:5] or fsck.stderr[-300:]}")
    for marker in stuck_markers(ws):
        problems.append(f".git/{marker} exists: an operation was left half-way")
    current = git(ws, "symbolic-ref", "--short", "-q", "HEAD", check=False).strip()
    if current != branch:
        problems.append(f"the workspace is on {current or 'a detached HEAD'!r}, not {branch!r}")
    status = git(ws, "status", "--porcelain").strip()
    if status:
        problems.append(f"the working tree differs from HEAD: {status.splitlines()[:5]}")
    return problems


def commits_on(ws: Path, branch: str = "main") -> list[dict[str, Any]]:
    """Every commit reachable from ``branch``: sha, parents, author email, Task-Id and Agent trailers."""
    out = git(ws, "log", branch, "--format=%H%x00%P%x00%ae%x00%B%x1e")
    commits = []
    for record in filter(None, (r.strip("\n") for r in out.split("\x1e"))):
        sha, parents, email, body = record.split("\x00", 3)
        trailers = dict(line.split(": ", 1) for line in body.splitlines()
                        if line.startswith(("Task-Id: ", "Agent: ")))
        commits.append({"sha": sha, "parents": parents.split(), "email": email,
                        "task_id": trailers.get("Task-Id"), "agent": trailers.get("Agent")})
    return commits


def duplicate_problems(ws: Path, branch: str = "main") -> list[str]:
    """No (task, agent) commit twice on ``branch``, and no two non-merge commits with the same patch."""
    problems = []
    commits = commits_on(ws, branch)
    pairs = Counter((c["task_id"], c["agent"]) for c in commits if c["task_id"])
    problems += [f"task {t} has {n} commits by {a} on {branch}" for (t, a), n in pairs.items() if n > 1]
    patches = subprocess.run(["git", "-C", str(ws), "log", branch, "--no-merges", "-p"], capture_output=True,
                             check=True).stdout
    ids = subprocess.run(["git", "-C", str(ws), "patch-id", "--stable"], input=patches, capture_output=True,
                         check=True).stdout.decode().split()
    same = [pid for pid, n in Counter(ids[0::2]).items() if n > 1]
    if same:
        problems.append(f"{len(same)} patches committed more than once on {branch}")
    return problems


def task_git_summary(ws: Path, task_id: str, branch: str = "main") -> dict[str, int]:
    """How often the task's QA commit, Developer commit and merge appear on ``branch``
    (``git log --grep "Task-Id: <id>"``)."""
    out = git(ws, "log", branch, f"--grep=Task-Id: {task_id}", "--format=%H %P%x00%ae")
    summary = {"qa": 0, "developer": 0, "merge": 0}
    for line in filter(None, out.splitlines()):
        shas, email = line.split("\x00")
        if len(shas.split()) > 2:
            summary["merge"] += 1
        elif email.startswith("developer@"):
            summary["developer"] += 1
        elif email.startswith("qa@"):
            summary["qa"] += 1
    return summary


def task_problems(config: Path, ids: list[str], branch: str = "main") -> list[str]:
    """Every task final, none lost; completed = exactly one Developer commit and one merge on
    ``branch``; failed = a reason and at most one of each."""
    problems = []
    rows = {r["id"]: r for r in task_rows(config)}
    ws = workspace(config)
    for task_id in ids:
        row = rows.get(task_id)
        if row is None:
            problems.append(f"task {task_id} is lost: no row in the database")
            continue
        if row["status"] not in FINAL:
            problems.append(f"task {task_id} ({row['title']}) is {row['status']}, not final")
            continue
        seen = task_git_summary(ws, task_id, branch)
        if row["status"] == "completed":
            if seen["developer"] != 1 or seen["merge"] != 1 or seen["qa"] != 1:
                problems.append(f"completed task {task_id} has {seen} on {branch}, expected one of each")
            module = json.loads(row["payload"]).get("module_path")
            if module and not (ws / module).is_file():
                problems.append(f"completed task {task_id}: {module} is not in the workspace")
        else:
            if not (row["error"] or "").strip():
                problems.append(f"{row['status']} task {task_id} has no reason")
            if max(seen.values()) > 1:
                problems.append(f"{row['status']} task {task_id} has {seen} on {branch}")
    return problems


def database_problems(config: Path) -> list[str]:
    with connect(config) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        leased = conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'in_progress' "
                              "OR lease_owner IS NOT NULL").fetchone()[0]
    problems = [] if check == "ok" else [f"PRAGMA integrity_check: {check}"]
    if leased:
        problems.append(f"{leased} tasks still leased or in progress after a clean stop")
    return problems


def all_problems(config: Path, ids: list[str], branch: str = "main") -> list[str]:
    ws = workspace(config)
    return (repository_problems(ws, branch) + duplicate_problems(ws, branch) + task_problems(config, ids, branch)
            + database_problems(config))


def outcome_summary(config: Path, ids: list[str]) -> dict[str, Any]:
    """Status counts and, for tasks that did not complete, why (for the test's report)."""
    rows = [r for r in task_rows(config) if r["id"] in ids]
    return {"statuses": dict(Counter(r["status"] for r in rows)),
            "not_completed": {r["title"]: f"{r['status']}: {(r['error'] or '')[:300]}" for r in rows
                              if r["status"] != "completed"}}
