"""MergedBranches: a completed code task's branch is deleted once it is on main (``git.delete_merged_branches``).

A 24/7 daemon makes one ``agents/<task id>-<slug>`` branch per code task; kept, they pile up by the
thousand, here and on a shared remote. The merge stage needs its branch until the merge is recorded
(after a kill -9 it finds "already merged" from the queue row, the branch tip and the Task-Id
trailer on main), so nothing is deleted there: :meth:`retire` runs when the release stage ends (the
task's last step, which never reads the branch), and :meth:`sweep` at start removes what a crash,
another node or an older version left: every task branch of a completed task.

A branch is deleted only when its tip is on main (nothing on it can be lost): locally by a
compare-and-swap on that tip and never while a working tree has it checked out, on the remote by a
push with a lease on that tip, so a branch someone moved since is kept. A failure is logged, never
raised: the task is done either way, and the next sweep tries again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

import structlog

from ai_agents.config.live import LiveConfig
from ai_agents.errors import AgentsError
from ai_agents.git import GitManager

log = structlog.get_logger("ai_agents.branches")

TASK_BRANCHES = "agents/"  # the code flow's branches: agents/<task id>-<slug of the title>
_TASK_ID = re.compile(r"agents/([0-9a-f]{12})(?:-|$)")


def task_of(branch: str) -> str | None:
    """The task id in a task branch's name (the daemon's own naming), or None."""
    m = _TASK_ID.match(branch)
    return m.group(1) if m else None


class MergedBranches:
    """Deletes merged task branches of completed tasks, locally and (``git.shared_remote``) on the remote."""

    def __init__(self, git: GitManager, live: LiveConfig, *, completed: Callable[[Iterable[str]], set[str]]):
        self.git = git
        self.live = live
        self._completed = completed  # task ids -> those whose task is completed

    @property
    def enabled(self) -> bool:
        return self.live.current.git.delete_merged_branches

    @property
    def shared_remote(self) -> bool:
        return self.live.current.git.shared_remote

    def retire(self, task_id: str, branch: str) -> list[str]:
        """After the task's last stage: delete ``branch`` where it is merged. What was deleted
        (``branch`` and/or ``<remote>/branch``); never raises."""
        if not self.enabled:
            return []
        try:
            if self.shared_remote:
                self.git.fetch()  # the remote's branch as it is now: the lease is taken on that
            local = {branch: tip} if (tip := self.git.rev(f"refs/heads/{branch}")) else {}
            remote = {branch: tip} if self.shared_remote and (tip := self.git.remote_rev(branch)) else {}
            return self._delete(local, remote)
        except AgentsError as e:
            log.warning("branch_not_deleted", task_id=task_id, branch=branch, error=str(e)[:500],
                        detail="kept; the sweep at the next start tries again")
            return []

    def sweep(self) -> list[str]:
        """At start: every task branch (here, and on the remote as last fetched) of a completed task
        that is on main. What was deleted; never raises."""
        if not self.enabled:
            return []
        try:
            local = self.git.branch_tips(TASK_BRANCHES)
            remote = self.git.remote_branch_tips(TASK_BRANCHES) if self.shared_remote else {}
            done = self._completed({t for b in (*local, *remote) if (t := task_of(b)) is not None})
            deleted = self._delete({b: s for b, s in local.items() if task_of(b) in done},
                                   {b: s for b, s in remote.items() if task_of(b) in done})
        except AgentsError as e:
            log.warning("branch_sweep_failed", error=str(e)[:500])
            return []
        if deleted:
            log.info("merged_branches_swept", deleted=len(deleted))
        return deleted

    def _delete(self, local: Mapping[str, str], remote: Mapping[str, str]) -> list[str]:
        mains = [m for m in (self.git.rev(f"refs/heads/{self.git.branch}"),
                             self.git.remote_rev(self.git.branch) if self.shared_remote else None) if m]

        def merged(tip: str) -> bool:
            return any(self.git.is_ancestor(tip, main) for main in mains)

        deleted = [b for b, tip in local.items() if merged(tip) and self.git.delete_branch(b, tip)]
        leases = {b: tip for b, tip in remote.items() if merged(tip)}
        if leases:
            deleted += [f"{self.git.remote_name}/{b}" for b in self.git.delete_remote_branches(leases)]
        kept = [b for b in local if b not in deleted] + [
            f"{self.git.remote_name}/{b}" for b in remote if f"{self.git.remote_name}/{b}" not in deleted]
        if kept:
            log.info("merged_branches_kept", kept=kept[:20], detail="not on main, moved, or checked out")
        return deleted
