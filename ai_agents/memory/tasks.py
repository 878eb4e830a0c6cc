"""TaskStore: the ``tasks`` table is the source of truth; every state change is one transaction.

Leases: a worker claims a task with ``claim`` (queued -> in_progress, attempt
counted, lease owner, expiry and a new fencing token set in one UPDATE guarded by
the status), so two workers can never both run it. Every later change by that
attempt names the token it claimed with: once the task was reclaimed (timed out,
stalled, daemon restarted) the token is stale and the change is refused. A lease
that outlives its process is reclaimed by ``recover_orphans`` (start-up) or
``expired_leases`` (task_timeout, or no heartbeat for stall_timeout).

Queue: a queued task carries the role whose workers take it (``queue_role``, set
by the orchestrator when it routes the task); ``next_for_role`` reads the first
few by priority through an index, so a dispatch costs the same with 10 or 10,000
queued tasks.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ai_agents.domain import (
    FINAL_STATUSES,
    DecisionRecord,
    Priority,
    Task,
    TaskStatus,
    TaskType,
    iso,
    normalize_text,
    parse_iso,
    utcnow,
)
from ai_agents.memory.database import dumps, loads
from ai_agents.memory.storage import Connection, Storage


def fingerprint(title: str, description: str = "") -> str:
    """Hash of the normalised title: two tasks with the same one are the same task."""
    return hashlib.sha256(normalize_text(title).encode()).hexdigest()[:16]


TASKS_CHANNEL = "ai_agents_tasks"  # NOTIFY channel: a task was queued


def new_task_id() -> str:
    return uuid.uuid4().hex[:12]


def _row_to_task(row: dict[str, Any]) -> Task:
    return Task(
        id=row["id"], type=TaskType(row["type"]), title=row["title"], description=row["description"],
        payload=loads(row["payload"]) or {}, priority=Priority.parse(int(row["priority"])),
        deadline=parse_iso(row["deadline"]), status=TaskStatus(row["status"]),
        assigned_agent=row["assigned_agent"], parent_id=row["parent_id"], attempts=row["attempts"],
        result=loads(row["result"]), error=row["error"], created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]), started_at=parse_iso(row["started_at"]),
        finished_at=parse_iso(row["finished_at"]), lease_owner=row["lease_owner"],
        lease_expires_at=parse_iso(row["lease_expires_at"]), fingerprint=row["fingerprint"],
        lease_token=row["lease_token"], heartbeat_at=parse_iso(row["heartbeat_at"]),
    )


def _insert_child(conn: Connection, spec: dict[str, Any], parent_id: str, now: datetime) -> Task:
    """Insert one child task (``spec``: TaskStore.create's keyword arguments) inside the caller's transaction."""
    child = Task(id=new_task_id(), type=TaskType(spec["type"]), title=spec["title"].strip(),
                 description=spec.get("description", "").strip(), payload=spec.get("payload") or {},
                 priority=Priority.parse(spec.get("priority", Priority.MEDIUM)),
                 deadline=spec.get("deadline"), assigned_agent=spec.get("assigned_agent"),
                 parent_id=parent_id, created_at=now, updated_at=now, fingerprint=fingerprint(spec["title"]))
    conn.execute(
        "INSERT INTO tasks (id, type, title, description, payload, priority, deadline, status, "
        "assigned_agent, parent_id, attempts, created_at, updated_at, fingerprint) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,0,?,?,?)",
        (child.id, child.type.value, child.title, child.description, dumps(child.payload),
         child.priority.value, iso(child.deadline), child.status.value, child.assigned_agent, parent_id,
         iso(now), iso(now), child.fingerprint))
    return child


# TaskStore.list shadows the builtin inside the class body: its annotations use these.
Tasks = list[Task]
Ids = list[str]
Rows = list[dict[str, Any]]
Values = list[Any]


class TaskStore:
    """Create, claim and finish tasks atomically."""

    def __init__(self, db: Storage, redact: Callable[[Any], Any] | None = None):
        self.db = db
        # Results and errors quote test output and model text: scrub secrets before storing them.
        self._redact = redact or (lambda value: value)

    def create(self, type: TaskType | str, title: str, description: str = "", *,
               priority: Priority | str | int = Priority.MEDIUM, payload: dict[str, Any] | None = None,
               deadline: datetime | None = None, assigned_agent: str | None = None,
               parent_id: str | None = None, task_id: str | None = None) -> Task:
        now = utcnow()
        task = Task(id=task_id or new_task_id(), type=TaskType(type), title=title.strip(),
                    description=description.strip(), payload=payload or {}, priority=Priority.parse(priority),
                    deadline=deadline, assigned_agent=assigned_agent, parent_id=parent_id,
                    created_at=now, updated_at=now, fingerprint=fingerprint(title, description))
        self.db.execute(
            "INSERT INTO tasks (id, type, title, description, payload, priority, deadline, status, assigned_agent, "
            "parent_id, attempts, created_at, updated_at, fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,0,?,?,?)",
            (task.id, task.type.value, task.title, task.description, dumps(task.payload), task.priority.value,
             iso(deadline), task.status.value, assigned_agent, parent_id, iso(now), iso(now), task.fingerprint),
        )
        self.db.notify(TASKS_CHANNEL)  # wakes idle daemons of a cluster (PostgreSQL LISTEN/NOTIFY)
        return task

    def get(self, task_id: str) -> Task | None:
        row = self.db.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return _row_to_task(row) if row else None

    def list(self, status: TaskStatus | str | None = None, limit: int = 1000, offset: int = 0,
             exclude_types: tuple[TaskType, ...] = ()) -> list[Task]:
        """Oldest first; ``offset`` skips that many (for paging); ``exclude_types`` are left out."""
        page = f"LIMIT {int(limit)} OFFSET {max(0, int(offset))}"
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(TaskStatus(status).value)
        if exclude_types:
            clauses.append(f"type NOT IN ({','.join('?' * len(exclude_types))})")
            params += [t.value for t in exclude_types]
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.query(f"SELECT * FROM tasks {where} ORDER BY created_at, rowid {page}", tuple(params))
        return [_row_to_task(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def counts_by_agent(self, exclude_types: tuple[TaskType, ...] = ()) -> dict[str, dict[str, int]]:
        marks = ",".join("?" * len(exclude_types)) or "''"
        rows = self.db.query("SELECT COALESCE(assigned_agent, '-') AS agent, status, COUNT(*) AS n "
                             f"FROM tasks WHERE type NOT IN ({marks}) GROUP BY agent, status",
                             tuple(t.value for t in exclude_types))
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["agent"], {})[r["status"]] = r["n"]
        return out

    def open_fingerprints(self) -> set[str]:
        """Fingerprints of tasks that are queued, running, waiting or done: never generate these again."""
        rows = self.db.query("SELECT DISTINCT fingerprint FROM tasks WHERE status != ?",
                             (TaskStatus.CANCELLED.value,))
        return {r["fingerprint"] for r in rows}

    def open_descriptions(self) -> set[str]:
        """Descriptions of the same tasks as :meth:`open_fingerprints` (the CEO compares both)."""
        rows = self.db.query("SELECT DISTINCT description FROM tasks WHERE status != ? AND description != ''",
                             (TaskStatus.CANCELLED.value,))
        return {r["description"] for r in rows}

    # --- the queue ------------------------------------------------------------------------
    def unrouted(self, limit: int = 500) -> Tasks:
        """Queued tasks no role's queue has yet (new submissions, children): to be routed."""
        rows = self.db.query("SELECT * FROM tasks WHERE status = ? AND queue_role IS NULL ORDER BY priority, "
                             f"created_at LIMIT {int(limit)}", (TaskStatus.QUEUED.value,))
        return [_row_to_task(r) for r in rows]

    def route(self, task_id: str, role: str) -> bool:
        """Put a queued task on ``role``'s queue."""
        return self.db.execute("UPDATE tasks SET queue_role = ? WHERE id = ? AND status = ?",
                               (role, task_id, TaskStatus.QUEUED.value)) == 1

    def route_many(self, routes: dict[str, str]) -> int:
        """Route several queued tasks (task id -> role) in one transaction."""
        if not routes:
            return 0
        with self.db.transaction() as conn:
            return sum(conn.execute("UPDATE tasks SET queue_role = ? WHERE id = ? AND status = ?",
                                    (role, task_id, TaskStatus.QUEUED.value)).rowcount
                       for task_id, role in routes.items())

    def unroute_queued(self) -> int:
        """At start-up: route every queued task again (the enabled roles may have changed)."""
        return self.db.execute("UPDATE tasks SET queue_role = NULL WHERE status = ? AND queue_role IS NOT NULL",
                               (TaskStatus.QUEUED.value,))

    def next_for_role(self, role: str, limit: int, deadline_within: timedelta = timedelta(hours=24)) -> Tasks:
        """The first ``limit`` queued tasks of ``role`` by priority, plus those whose deadline is near
        (their effective priority moves up). Two indexed reads of at most ``limit`` rows each."""
        cols = "id, type, title, priority, deadline, created_at"
        rows = self.db.query(f"SELECT {cols} FROM tasks WHERE status = ? AND queue_role = ? "
                             f"ORDER BY priority, created_at LIMIT {int(limit)}", (TaskStatus.QUEUED.value, role))
        rows += self.db.query(f"SELECT {cols} FROM tasks WHERE status = ? AND queue_role = ? AND deadline IS NOT "
                              f"NULL AND deadline < ? ORDER BY deadline LIMIT {int(limit)}",
                              (TaskStatus.QUEUED.value, role, iso(utcnow() + deadline_within)))
        return [Task(id=r["id"], type=TaskType(r["type"]), title=r["title"],
                     priority=Priority.parse(int(r["priority"])), deadline=parse_iso(r["deadline"]),
                     created_at=datetime.fromisoformat(r["created_at"])) for r in rows]

    def any_queued(self) -> bool:
        """Is any task queued? (One indexed read: the dispatcher's idle check.)"""
        return self.db.query_one("SELECT 1 AS x FROM tasks WHERE status = ? LIMIT 1",
                                 (TaskStatus.QUEUED.value,)) is not None

    def queued_by_role(self) -> dict[str, int]:
        rows = self.db.query("SELECT COALESCE(queue_role, '-') AS role, COUNT(*) AS n FROM tasks WHERE status = ? "
                             "GROUP BY queue_role", (TaskStatus.QUEUED.value,))
        return {r["role"]: r["n"] for r in rows}

    def open_of_type(self, type: TaskType) -> Tasks:
        """Tasks of ``type`` that are queued or running (the CEO's own work: at most a handful)."""
        rows = self.db.query("SELECT * FROM tasks WHERE type = ? AND status IN (?, ?) ORDER BY created_at",
                             (TaskType(type).value, TaskStatus.QUEUED.value, TaskStatus.IN_PROGRESS.value))
        return [_row_to_task(r) for r in rows]

    def busy_counts(self, exclude_types: tuple[TaskType, ...] = ()) -> dict[str, int]:
        """Tasks per status, leaving out ``exclude_types`` (the CEO's bookkeeping tasks)."""
        marks = ",".join("?" * len(exclude_types)) or "''"
        rows = self.db.query(f"SELECT status, COUNT(*) AS n FROM tasks WHERE type NOT IN ({marks}) GROUP BY status",
                             tuple(t.value for t in exclude_types))
        return {r["status"]: r["n"] for r in rows}

    # --- state changes: one transaction each, guarded by the expected status ---------
    def claim(self, task_id: str, owner: str, lease_seconds: float, *, role: str | None = None) -> Task | None:
        """queued -> in_progress for ``owner``; None when someone else has it or it is not queued, or (``role``)
        when it is queued for another role: an id in a role's prefetch may be stale, the row is the truth."""
        if role is None:
            return self._claim("id = ? AND status = ?", (task_id, TaskStatus.QUEUED.value), owner, lease_seconds)
        return self._claim("id = ? AND status = ? AND queue_role = ?", (task_id, TaskStatus.QUEUED.value, role),
                           owner, lease_seconds)

    def claim_next(self, role: str, owner: str, lease_seconds: float) -> Task | None:
        """Claim the first queued task of ``role`` by priority that no one else is claiming (PostgreSQL:
        ``FOR UPDATE SKIP LOCKED``, so nodes racing for the head of the queue each get a different task)."""
        return self._claim("status = ? AND queue_role = ? ORDER BY priority, created_at LIMIT 1",
                           (TaskStatus.QUEUED.value, role), owner, lease_seconds)

    def _claim(self, where: str, params: tuple[Any, ...], owner: str, lease_seconds: float) -> Task | None:
        """One UPDATE of the row chosen by ``where``: the attempt counted, the lease and a new fencing token set.

        SQLite: under BEGIN IMMEDIATE (one writer at a time). PostgreSQL: the row is locked with
        ``FOR UPDATE SKIP LOCKED`` in the sub-select, and the UPDATE re-checks that it is still queued.
        """
        now = utcnow()
        skip = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        with self.db.transaction() as conn:
            row = conn.execute(
                "UPDATE tasks SET status = ?, attempts = attempts + 1, lease_owner = ?, lease_expires_at = ?, "
                "lease_token = lease_token + 1, heartbeat_at = ?, started_at = ?, updated_at = ? "
                f"WHERE id = (SELECT id FROM tasks WHERE {where}{skip}) AND status = ? RETURNING *",
                (TaskStatus.IN_PROGRESS.value, owner, iso(now + timedelta(seconds=lease_seconds)), iso(now),
                 iso(now), iso(now), *params, TaskStatus.QUEUED.value),
            ).fetchall()  # read to the end before COMMIT (SQLite's RETURNING)
        return _row_to_task(dict(row[0])) if row else None

    def renew_lease(self, task_id: str, owner: str, token: int) -> bool:
        """Heartbeat of a running attempt; False when the lease is no longer this attempt's.

        It moves ``heartbeat_at`` only: ``lease_expires_at`` (task_timeout) is a wall-time cap.
        """
        return self.db.execute(
            "UPDATE tasks SET heartbeat_at = ? WHERE id = ? AND status = ? AND lease_owner = ? AND lease_token = ?",
            (iso(utcnow()), task_id, TaskStatus.IN_PROGRESS.value, owner, token)) == 1

    def lease_current(self, task_id: str, owner: str, token: int) -> bool:
        """Is ``token`` still the lease of the running task (the fencing check before a side effect)?"""
        return self.db.query_one(
            "SELECT 1 AS ok FROM tasks WHERE id = ? AND status = ? AND lease_owner = ? AND lease_token = ?",
            (task_id, TaskStatus.IN_PROGRESS.value, owner, token)) is not None

    def update_payload(self, task_id: str, updates: dict[str, Any]) -> None:
        """Merge ``updates`` into the payload (progress markers a restart resumes from)."""
        with self.db.transaction() as conn:
            row = conn.execute(f"SELECT payload FROM tasks WHERE id = ?{self.db.lock_rows}", (task_id,)).fetchone()
            if row is None:
                return
            payload = loads(row["payload"]) or {}
            payload.update(updates)
            conn.execute("UPDATE tasks SET payload = ?, updated_at = ? WHERE id = ?",
                         (dumps(payload), iso(utcnow()), task_id))

    def transition(self, task_id: str, new: TaskStatus, *, expected: TaskStatus | tuple[TaskStatus, ...] | None = None,
                   owner: str | None = None, token: int | None = None, result: dict[str, Any] | None = None,
                   error: str | None = None) -> bool:
        """Move a task to ``new`` if it is in ``expected`` (and leased by ``owner`` with ``token`` when given)."""
        now = iso(utcnow())
        sets = ["status = ?", "updated_at = ?"]
        params: Values = [new.value, now]
        if result is not None:
            sets.append("result = ?")
            params.append(dumps(self._redact(result)))
        if error is not None:
            sets.append("error = ?")
            params.append(self._redact(error))
        if new != TaskStatus.IN_PROGRESS:
            sets += ["lease_owner = NULL", "lease_expires_at = NULL"]
        if new in FINAL_STATUSES or new == TaskStatus.ESCALATED:
            sets.append("finished_at = ?")
            params.append(now)
        where = ["id = ?"]
        params.append(task_id)
        if expected is not None:
            expected_t = (expected,) if isinstance(expected, TaskStatus) else expected
            where.append(f"status IN ({','.join('?' * len(expected_t))})")
            params += [s.value for s in expected_t]
        if owner is not None:
            where.append("lease_owner = ?")
            params.append(owner)
        if token is not None:
            where.append("lease_token = ?")
            params.append(token)
        return self.db.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE {' AND '.join(where)}", tuple(params)) == 1

    def complete(self, task_id: str, owner: str, result: dict[str, Any],
                 children: Sequence[dict[str, Any]] = (), *, token: int | None = None) -> Tasks | None:
        """in_progress -> completed and create follow-up tasks, in one transaction.

        Returns the children, or None when ``owner`` no longer holds the lease (the
        task was reclaimed meanwhile, so this late result must not count).
        """
        now = utcnow()
        with self.db.transaction() as conn:
            changed = conn.execute(
                "UPDATE tasks SET status = ?, result = ?, error = NULL, lease_owner = NULL, lease_expires_at = NULL, "
                "finished_at = ?, updated_at = ? WHERE id = ? AND status = ? AND lease_owner = ? "
                "AND lease_token = COALESCE(?, lease_token)",
                (TaskStatus.COMPLETED.value, dumps(self._redact(result)), iso(now), iso(now), task_id,
                 TaskStatus.IN_PROGRESS.value, owner, token)).rowcount
            if not changed:
                return None
            created = [_insert_child(conn, spec, task_id, now) for spec in children]
        if created:
            self.db.notify(TASKS_CHANNEL)
        return created

    def handoff(self, task_id: str, owner: str, stage: str, assigned_agent: str,
                payload_updates: dict[str, Any] | None = None, *, token: int | None = None) -> bool:
        """in_progress -> queued for the next stage's role; each stage gets its own attempts."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT payload FROM tasks WHERE id = ? AND status = ? AND lease_owner = ? "
                               f"AND lease_token = COALESCE(?, lease_token){self.db.lock_rows}",
                               (task_id, TaskStatus.IN_PROGRESS.value, owner, token)).fetchone()
            if row is None:
                return False
            payload = loads(row["payload"]) or {}
            payload.update(self._redact(payload_updates or {}))
            payload["stage"] = stage
            conn.execute(
                "UPDATE tasks SET status = ?, payload = ?, assigned_agent = ?, queue_role = ?, attempts = 0, "
                "lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                (TaskStatus.QUEUED.value, dumps(payload), assigned_agent, assigned_agent, iso(utcnow()), task_id))
        self.db.notify(TASKS_CHANNEL)
        return True

    def release(self, task_id: str, owner: str, reason: str, *, token: int | None = None) -> bool:
        """in_progress -> queued without counting the attempt (shutdown, budget wait)."""
        return self.db.execute(
            "UPDATE tasks SET status = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
            "lease_owner = NULL, "
            "lease_expires_at = NULL, error = ?, updated_at = ? WHERE id = ? AND status = ? AND lease_owner = ? "
            "AND lease_token = COALESCE(?, lease_token)",
            (TaskStatus.QUEUED.value, self._redact(reason), iso(utcnow()), task_id, TaskStatus.IN_PROGRESS.value,
             owner, token)) == 1

    # --- the CEO's decision on an escalated task: the change and its decision row in one transaction ---
    def retry_escalated(self, task_id: str, description: str | None, payload_updates: dict[str, Any],
                        decision: DecisionRecord | None = None) -> bool:
        """escalated -> queued with fresh attempts (the CEO chose to retry differently)."""
        with self.db.transaction() as conn:
            row = conn.execute(f"SELECT payload, description FROM tasks WHERE id = ? AND status = ?{self.db.lock_rows}",
                               (task_id, TaskStatus.ESCALATED.value)).fetchone()
            if row is None:
                return False
            payload = loads(row["payload"]) or {}
            payload.update(payload_updates)
            conn.execute(
                "UPDATE tasks SET status = ?, description = ?, payload = ?, attempts = 0, finished_at = NULL, "
                "updated_at = ? WHERE id = ?",
                (TaskStatus.QUEUED.value, description or row["description"], dumps(payload), iso(utcnow()), task_id))
            self._record(conn, decision)
        self.db.notify(TASKS_CHANNEL)
        return True

    def split_escalated(self, task_id: str, subtasks: Rows, payload_updates: dict[str, Any],
                        decision: DecisionRecord | None = None) -> Tasks | None:
        """escalated -> cancelled (``result.split_into``) with its subtasks created as children, in ONE
        transaction: a crash or a failed insert leaves the task escalated and no subtask behind.
        None when the task is no longer escalated."""
        now = utcnow()
        with self.db.transaction() as conn:
            row = conn.execute(f"SELECT payload FROM tasks WHERE id = ? AND status = ?{self.db.lock_rows}",
                               (task_id, TaskStatus.ESCALATED.value)).fetchone()
            if row is None:
                return None
            payload = {**(loads(row["payload"]) or {}), **payload_updates}
            conn.execute(
                "UPDATE tasks SET status = ?, payload = ?, result = ?, lease_owner = NULL, lease_expires_at = NULL, "
                "finished_at = ?, updated_at = ? WHERE id = ?",
                (TaskStatus.CANCELLED.value, dumps(payload),
                 dumps(self._redact({"split_into": [s["title"] for s in subtasks]})), iso(now), iso(now), task_id))
            created = [_insert_child(conn, spec, task_id, now) for spec in subtasks]
            self._record(conn, decision)
        self.db.notify(TASKS_CHANNEL)
        return created

    def drop_escalated(self, task_id: str, error: str, decision: DecisionRecord | None = None) -> bool:
        """escalated -> failed with ``error`` (the CEO dropped it)."""
        now = iso(utcnow())
        with self.db.transaction() as conn:
            changed = conn.execute(
                "UPDATE tasks SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL, "
                "finished_at = ?, updated_at = ? WHERE id = ? AND status = ?",
                (TaskStatus.FAILED.value, self._redact(error), now, now, task_id,
                 TaskStatus.ESCALATED.value)).rowcount
            if changed:
                self._record(conn, decision)
        return changed == 1

    def _record(self, conn: Connection, decision: DecisionRecord | None) -> None:
        if decision is not None:
            conn.execute("INSERT INTO decision_history (agent_name, decision_type, decision_data, timestamp, "
                         "task_id) VALUES (?, ?, ?, ?, ?)",
                         (decision.agent_name, decision.decision_type, dumps(self._redact(decision.data)),
                          iso(utcnow()), decision.task_id))

    def recover_orphans(self, max_attempts: int, owner_prefix: str | None = None) -> tuple[Ids, Ids]:
        """At start-up: every in_progress task belonged to a dead process.

        Requeue it (its attempt was counted when it was claimed), or escalate it when
        it has used all its attempts. Returns (requeued ids, escalated ids). In a cluster only
        this node's leases (owners starting with ``owner_prefix``) are its own to recover; the
        other nodes' are reclaimed when they expire.
        """
        if owner_prefix is None:
            return self._reclaim("status = ?", (TaskStatus.IN_PROGRESS.value,), max_attempts,
                                 "the daemon stopped while this task was running")
        return self._reclaim("status = ? AND substr(lease_owner, 1, ?) = ?",
                             (TaskStatus.IN_PROGRESS.value, len(owner_prefix), owner_prefix), max_attempts,
                             "the daemon stopped while this task was running")

    def expired_leases(self, max_attempts: int,
                       stall_seconds: float | None = None) -> tuple[Ids, Ids]:
        """In-progress tasks whose lease ran out (task_timeout, wall time) or whose attempt sent no
        heartbeat for ``stall_seconds`` (stall_timeout): requeue or escalate."""
        now = utcnow()
        requeued, escalated = self._reclaim("status = ? AND lease_expires_at < ?",
                                            (TaskStatus.IN_PROGRESS.value, iso(now)), max_attempts,
                                            "the task timed out (its lease expired)")
        if stall_seconds is not None:
            more = self._reclaim("status = ? AND heartbeat_at < ?",
                                 (TaskStatus.IN_PROGRESS.value, iso(now - timedelta(seconds=stall_seconds))),
                                 max_attempts, f"the task stalled (no heartbeat for {stall_seconds:g}s)")
            requeued, escalated = requeued + more[0], escalated + more[1]
        return requeued, escalated

    def _reclaim(self, where: str, params: tuple, max_attempts: int, reason: str) -> tuple[Ids, Ids]:
        now = iso(utcnow())
        # PostgreSQL: rows another node is reclaiming right now are skipped (it has them).
        skip = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        with self.db.transaction() as conn:
            rows = conn.execute(f"SELECT id, attempts FROM tasks WHERE {where}{skip}", params).fetchall()
            requeued = [r["id"] for r in rows if r["attempts"] < max_attempts]
            escalated = [r["id"] for r in rows if r["attempts"] >= max_attempts]
            for ids, status in ((requeued, TaskStatus.QUEUED), (escalated, TaskStatus.ESCALATED)):
                for tid in ids:
                    conn.execute(
                        "UPDATE tasks SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL, "
                        f"updated_at = ? WHERE id = ? AND {where}", (status.value, reason, now, tid, *params))
        if requeued:
            self.db.notify(TASKS_CHANNEL)
        return requeued, escalated

    # --- approvals ----------------------------------------------------------------
    def request_approval(self, task_id: str, action: str, details: dict[str, Any],
                         payload_updates: dict[str, Any] | None = None, *, owner: str | None = None,
                         token: int | None = None) -> bool:
        """Park the task in awaiting_approval with a pending approval row (and its progress), atomically.

        With ``owner`` (and ``token``) only the attempt holding the lease may do it; False otherwise.
        """
        now = iso(utcnow())
        with self.db.transaction() as conn:
            if owner is not None and conn.execute(
                    "SELECT 1 FROM tasks WHERE id = ? AND status = ? AND lease_owner = ? "
                    f"AND lease_token = COALESCE(?, lease_token){self.db.lock_rows}",
                    (task_id, TaskStatus.IN_PROGRESS.value, owner, token)).fetchone() is None:
                return False
            if payload_updates:
                row = conn.execute(f"SELECT payload FROM tasks WHERE id = ?{self.db.lock_rows}",
                                   (task_id,)).fetchone()
                payload = {**(loads(row["payload"]) or {}), **payload_updates}
                conn.execute("UPDATE tasks SET payload = ? WHERE id = ?", (dumps(payload), task_id))
            conn.execute(
                "INSERT INTO approvals (task_id, action, status, details, requested_at) VALUES (?, ?, 'pending', ?, ?) "
                "ON CONFLICT(task_id, action) DO UPDATE SET status = 'pending', details = excluded.details, "
                "requested_at = excluded.requested_at, decided_at = NULL, decided_by = NULL",
                (task_id, action, dumps(details), now))
            conn.execute("UPDATE tasks SET status = ?, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
                         "WHERE id = ?", (TaskStatus.AWAITING_APPROVAL.value, now, task_id))
        return True

    def decide_approval(self, task_id: str, approved: bool, decided_by: str) -> dict[str, Any] | None:
        """Approve or reject the pending approval of a task; requeue it either way so it can go on."""
        now = iso(utcnow())
        with self.db.transaction() as conn:
            row = conn.execute(f"SELECT * FROM approvals WHERE task_id = ? AND status = 'pending'{self.db.lock_rows}",
                               (task_id,)).fetchone()
            if row is None:
                return None
            status = "approved" if approved else "rejected"
            if not conn.execute("UPDATE approvals SET status = ?, decided_at = ?, decided_by = ? "
                                "WHERE id = ? AND status = 'pending'", (status, now, decided_by, row["id"])).rowcount:
                return None  # decided meanwhile (another node, another command)
            conn.execute("UPDATE tasks SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                         (TaskStatus.QUEUED.value, now, task_id, TaskStatus.AWAITING_APPROVAL.value))
        self.db.notify(TASKS_CHANNEL)
        return {**dict(row), "status": status}

    def approvals(self, status: str | None = "pending") -> Rows:
        if status:
            rows = self.db.query("SELECT * FROM approvals WHERE status = ? ORDER BY id", (status,))
        else:
            rows = self.db.query("SELECT * FROM approvals ORDER BY id")
        for r in rows:
            r["details"] = loads(r["details"])
        return rows

    def approval_status(self, task_id: str, action: str) -> str | None:
        row = self.db.query_one("SELECT status FROM approvals WHERE task_id = ? AND action = ?", (task_id, action))
        return row["status"] if row else None

    def expire_approvals(self, timeout_seconds: float) -> Ids:
        cutoff = iso(utcnow() - timedelta(seconds=timeout_seconds))
        rows = self.db.query("SELECT task_id FROM approvals WHERE status = 'pending' AND requested_at < ?", (cutoff,))
        expired = []
        for r in rows:
            if self.decide_approval(r["task_id"], approved=False, decided_by="timeout"):
                expired.append(r["task_id"])
        return expired
