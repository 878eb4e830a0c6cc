"""The dashboard's pages as server-rendered HTML: every value goes through the :class:`Escaper`.

``Pages`` holds no state besides the escaper and the poll interval; each method
takes what :class:`~ai_agents.dashboard.queries.DashboardData` read and returns
the whole page as Markup. Forms that change state carry the CSRF token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ai_agents.dashboard import charts
from ai_agents.dashboard.html import Escaper, Markup
from ai_agents.dashboard.queries import TaskPage, TimelineEntry, day_label
from ai_agents.domain import TaskStatus, TaskType
from ai_agents.ops.health import human_age

NAV = (("/", "Overview"), ("/tasks", "Tasks"), ("/charts", "Charts"), ("/approvals", "Approvals"))


class Pages:
    def __init__(self, escaper: Escaper, poll_seconds: float, *, login_enabled: bool):
        self.e = escaper
        self.poll_seconds = poll_seconds
        self.login_enabled = login_enabled

    # --- layout ------------------------------------------------------------------------------
    def layout(self, title: str, active: str, live: Markup, *, before: Markup = Markup(""),
               after: Markup = Markup(""), poll: bool = True, pending: int = 0) -> Markup:
        e = self.e
        nav = e.join(e.render('<a href="{href}" class="{cls}">{name}{badge}</a>', href=href, name=name,
                              cls="active" if href == active else "",
                              badge=e.render(' <span class="badge">{n}</span>', n=pending)
                              if href == "/approvals" and pending else Markup(""))
                     for href, name in NAV)
        logout = Markup('<a href="/logout" class="logout">Log out</a>' if self.login_enabled else "")
        return e.render(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>{title} · ai-agents</title><link rel="stylesheet" href="/static/style.css">'
            '<script src="/static/app.js" defer></script></head><body>'
            '<header><span class="brand">ai-agents</span><nav>{nav}</nav>'
            '<span id="live-status" class="muted"></span>{logout}</header>'
            '<main><h1>{title}</h1>{before}<div id="live" data-poll="{poll}">{live}</div>{after}</main></body></html>',
            title=title, nav=nav, logout=logout, before=before, live=live, after=after,
            poll=int(self.poll_seconds * 1000) if poll else 0)

    def login(self, message: str = "", next_url: str = "/") -> Markup:
        # No stylesheet or script: nothing but this page is served before login.
        return self.e.render(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Log in · ai-agents</title></head>'
            '<body><h1>ai-agents dashboard</h1><p>{message}</p>'
            '<form method="post" action="/login"><input type="hidden" name="next" value="{next}">'
            '<label>Dashboard token <input type="password" name="token" id="token" autocomplete="current-password"'
            ' autofocus></label> <button type="submit" id="login">Log in</button></form></body></html>',
            message=message or "This dashboard needs its token (dashboard.token).", next=next_url)

    def error(self, status: int, message: str) -> Markup:
        return self.layout(f"{status}", "", self.e.render("<p>{m}</p>", m=message), poll=False)

    # --- overview ----------------------------------------------------------------------------
    def overview(self, o: dict[str, Any]) -> Markup:
        e = self.e
        hb = o["heartbeat"]
        health = o["health"]
        age = o["heartbeat_age"]
        facts = [
            ("health", e.render('<span class="{c}">{t}</span>', c="ok" if health.ok else "bad",
                                t=("healthy: " if health.ok else "unhealthy: ") + health.reason)),
            ("heartbeat", "never" if age is None else f"{human_age(age)} ago"),
            ("last main-loop cycle", "none recorded" if o["loop_age"] is None else f"{human_age(o['loop_age'])} ago"),
            ("pid", hb.get("pid", "-")),
            ("paused", "yes" if hb.get("paused") else "no"),
        ]
        if hb.get("stopped_at"):
            facts.append(("stopped at", hb["stopped_at"]))
        if hb.get("unhealthy_roles"):
            facts.append(("unhealthy roles", hb["unhealthy_roles"]))
        for key, value in o["restart_pending"].items():  # e.g. the heartbeat's restart_required keys
            label = "config waiting for a restart" if key == "restart_required" else key.replace("_", " ")
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            facts.append((label, e.render('<span class="{c}">{v}</span>', c="bad" if shown else "",
                                          v=shown or "none")))
        b = o["budget"]
        lim, rem = b["limits"], b["remaining"]
        budget = [
            ("LLM calls today", b["calls"]), ("tokens today", b["tokens"]), ("spent today", f"${b['cost_usd']:.4f}"),
            ("daily limit", " / ".join(x for x in (
                f"${lim['daily_usd']}" if lim["daily_usd"] is not None else "",
                f"{lim['daily_tokens']} tokens" if lim["daily_tokens"] is not None else "") if x) or "unlimited"),
            ("left today", " / ".join(x for x in (
                f"${rem['usd']}" if rem["usd"] is not None else "",
                f"{rem['tokens']} tokens" if rem["tokens"] is not None else "") if x) or "unlimited"),
            ("budget exhausted", "YES" if b["exhausted"] else "no"),
        ]
        statuses = [s.value for s in TaskStatus]
        queues = hb.get("queues") or {}
        running = hb.get("current_tasks") or {}
        agents = sorted(set(o["by_agent"]) | {str(k) for k in queues})
        role_rows = e.join(e.render(
            "<tr><td>{a}</td><td>{run}</td><td>{q}</td><td>{qd}</td><td>{w}</td><td>{done}</td><td>{bad}</td></tr>",
            a=a, run=o["by_agent"].get(a, {}).get("in_progress", 0),
            q=o["by_agent"].get(a, {}).get("queued", 0), qd=queues.get(a, "-"),
            w=o["by_agent"].get(a, {}).get("awaiting_approval", 0),
            done=o["by_agent"].get(a, {}).get("completed", 0),
            bad=sum(o["by_agent"].get(a, {}).get(s, 0) for s in ("failed", "escalated"))) for a in agents)
        workers = e.join(e.render('<li>{w}: <a href="/tasks/{t}">{t}</a></li>', w=w, t=t)
                         for w, t in sorted(running.items()) if t)
        status_line = e.join(e.render('<a class="pill" href="/tasks?{qs}">{s} {n}</a>',
                                      qs=urlencode({"status": s}), s=s, n=o["by_status"].get(s, 0))
                             for s in statuses)
        alerts = e.join(e.render("<tr><td>{t}</td><td>{lvl}</td><td>{n}</td><td>{m}</td></tr>",
                                 t=a.get("timestamp", ""), lvl=a.get("level", ""),
                                 n=a.get("alert_name") or a.get("event", ""), m=a.get("message", ""))
                        for a in o["alerts"])
        live = e.render(
            '<section class="grid2"><div class="card"><h2>Daemon</h2>{facts}</div>'
            '<div class="card"><h2>Budget</h2>{budget}</div></section>'
            '<section class="card"><h2>Tasks</h2><p>{status_line}</p>'
            '<p><a href="/approvals">{pending} waiting for approval</a></p>'
            '<table><thead><tr><th>agent</th><th>running</th><th>queued</th><th>in queue now</th>'
            '<th>waiting</th><th>completed</th><th>failed/escalated</th></tr></thead><tbody>{roles}</tbody></table>'
            '<h3>Running now</h3><ul>{workers}</ul></section>'
            '<section class="card"><h2>Recently updated</h2>{recent}</section>'
            '<section class="card"><h2>Recent alerts</h2><table><tbody>{alerts}</tbody></table></section>',
            facts=self._facts(facts), budget=self._facts(budget), status_line=status_line,
            pending=o["pending_approvals"]["n"], roles=role_rows,
            workers=workers or Markup("<li class='muted'>nothing running</li>"),
            recent=self._task_table(o["recent"], costs=False),
            alerts=alerts or Markup("<tr><td class='muted'>no alerts recorded</td></tr>"))
        return self.layout("Overview", "/", live, pending=o["pending_approvals"]["n"])

    def _facts(self, facts: list[tuple[str, Any]]) -> Markup:
        e = self.e
        return e.render('<dl class="facts">{items}</dl>', items=e.join(
            e.render("<dt>{k}</dt><dd>{v}</dd>", k=k, v=v) for k, v in facts))

    # --- tasks -------------------------------------------------------------------------------
    def _task_table(self, rows: list[dict[str, Any]], *, costs: bool = True) -> Markup:
        e = self.e
        head = ("<tr><th>id</th><th>title</th><th>status</th><th>type</th><th>agent</th><th>stage</th>"
                "<th>attempts</th>" + ("<th>tokens</th><th>cost</th>" if costs else "") + "<th>updated</th></tr>")
        body = e.join(e.render(
            '<tr class="task-row" data-id="{id}"><td><a href="/tasks/{id}">{id}</a></td><td>{title}</td>'
            '<td><span class="st {status}">{status}</span></td><td>{type}</td><td>{agent}</td><td>{stage}</td>'
            '<td>{attempts}</td>{cost}<td>{updated}</td></tr>',
            id=r["id"], title=e.text(r["title"], 140), status=r["status"], type=r["type"],
            agent=r["assigned_agent"] or "-", stage=r.get("stage") or "-", attempts=r["attempts"],
            cost=e.render("<td>{t}</td><td>${c}</td>", t=r.get("tokens", 0), c=f"{r.get('cost_usd', 0.0):.4f}")
            if costs else Markup(""), updated=(r["updated_at"] or "")[:19]) for r in rows)
        return e.render('<table class="tasks"><thead>{head}</thead><tbody>{body}</tbody></table>',
                        head=Markup(head), body=body or Markup("<tr><td class='muted'>no tasks</td></tr>"))

    def tasks(self, p: TaskPage) -> Markup:
        e = self.e
        f = p.filter

        def options(values: list[str], current: str) -> Markup:
            return e.join([Markup('<option value="">any</option>')] + [
                e.render('<option value="{v}"{sel}>{v}</option>', v=v,
                         sel=Markup(" selected") if v == current else Markup("")) for v in values])

        form = e.render(
            '<form method="get" action="/tasks" class="filters"><input type="search" name="q" id="q" value="{q}" '
            'placeholder="id or words in the title"><label>status <select name="status">{st}</select></label>'
            '<label>type <select name="type">{ty}</select></label><label>agent <select name="agent">{ag}</select>'
            '</label><label><input type="checkbox" name="all" value="1"{all}> CEO\'s own tasks</label>'
            '<button type="submit" id="search">Search</button></form>',
            all=Markup(" checked") if f.all else Markup(""), q=f.q, st=options([s.value for s in TaskStatus], f.status),
            ty=options([t.value for t in TaskType], f.type), ag=options(p.agents, f.agent))

        def link(page: int, text: str) -> Markup:
            qs = urlencode({k: v for k, v in (("q", f.q), ("status", f.status), ("type", f.type),
                                              ("agent", f.agent), ("all", "1" if f.all else ""), ("page", page)) if v})
            return e.render('<a href="/tasks?{qs}" class="pager">{t}</a>', qs=qs, t=text)

        pager = e.join([
            link(p.page - 1, "‹ newer") if p.page > 1 else Markup(""),
            e.render(' <span class="muted">page {p} of {n} · {t} tasks</span> ', p=p.page, n=p.pages, t=p.total),
            link(p.page + 1, "older ›") if p.page < p.pages else Markup("")])
        live = e.render("{pager}{table}{pager}", pager=pager, table=self._task_table(p.rows))
        return self.layout("Tasks", "/tasks", live, before=form)

    def task(self, t: dict[str, Any], timeline: list[TimelineEntry], commits: list[tuple[str, str]],
             diff: str, csrf: str, target: str = "") -> Markup:
        e = self.e
        facts: list[tuple[str, Any]] = [
            ("status", e.render('<span class="st {s}" id="task-status">{s}</span>', s=t["status"])),
            ("type", t["type"]), ("agent", t["assigned_agent"] or "-"), ("stage", t["payload"].get("stage") or "-"),
            ("attempts", t["attempts"]), ("created", t["created_at"]), ("finished", t["finished_at"] or "-"),
            ("LLM", f"{t['llm'].get('calls', 0)} calls, {t['llm'].get('tokens', 0)} tokens, "
                    f"${float(t['llm'].get('cost_usd') or 0):.4f}")]
        if t.get("parent_id"):
            facts.append(("parent", e.render('<a href="/tasks/{p}">{p}</a>', p=t["parent_id"])))
        error = e.render('<div class="card error"><h2>Error</h2><pre id="task-error">{err}</pre></div>',
                         err=e.text(t["error"], 8000)) if t.get("error") else Markup("")
        approvals = e.join(self._approval_item(a, t["title"], csrf, f"/tasks/{t['id']}", target)
                           for a in t["approvals"])
        rows = e.join(e.render(
            '<tr class="ev {kind}"><td>{at}</td><td>{kind}</td><td>{who}</td><td>{what}</td><td>{details}{links}</td>'
            '</tr>', at=(ev.at or "")[5:23].replace("T", " "), kind=ev.kind, who=ev.who, what=ev.what,
            details=e.details(ev.details),
            links=e.join(e.render(' <a href="/commit/{s}?task={t}">diff {short}</a>', s=c, t=t["id"], short=c[:10])
                         for c in ev.commits)) for ev in timeline)
        commit_list = e.join(e.render('<li><a href="/commit/{s}?task={t}"><code>{short}</code></a> {subject}</li>',
                                      s=sha, t=t["id"], short=sha[:10], subject=subject) for sha, subject in commits)
        live = e.render(
            '<p class="title" id="task-title">{title}</p>'
            '<section class="grid2"><div class="card">{facts}</div><div class="card"><h2>Description</h2>'
            '<pre>{desc}</pre></div></section>{error}'
            '<section class="card"><h2>Approvals</h2>{approvals}</section>'
            '<section class="card"><h2>Timeline</h2><table class="timeline"><thead><tr><th>at</th><th>kind</th>'
            '<th>who</th><th>what</th><th>details</th></tr></thead><tbody>{rows}</tbody></table></section>'
            '<section class="card"><h2>Commits</h2><ul>{commits}</ul></section>',
            title=t["title"], facts=self._facts(facts), desc=e.text(t["description"], 6000), error=error,
            approvals=approvals or Markup("<p class='muted'>none</p>"), rows=rows,
            commits=commit_list or Markup("<li class='muted'>no commits yet</li>"))
        after = e.render('<section class="card"><h2>Diff</h2><pre class="diff" id="task-diff">{d}</pre></section>',
                         d=self._diff(diff)) if diff else Markup("")
        return self.layout(f"Task {t['id']}", "/tasks", live, after=after)

    def _diff(self, diff: str) -> Markup:
        e = self.e
        lines = []
        for line in diff.splitlines():
            cls = ("add" if line.startswith("+") and not line.startswith("+++") else
                   "del" if line.startswith("-") and not line.startswith("---") else
                   "hunk" if line.startswith("@@") else "")
            lines.append(e.render('<span class="{c}">{l}</span>', c=cls, l=line) if cls else e.text(line))
        return e.join(lines, "\n")

    def commit(self, sha: str, text: str, task_id: str | None) -> Markup:
        e = self.e
        back = e.render('<p><a href="/tasks/{t}">back to task {t}</a></p>', t=task_id) if task_id else Markup("")
        body = e.render('{back}<pre class="diff" id="commit-diff">{d}</pre>', back=back,
                        d=self._diff(text) if text else Markup("unknown commit"))
        return self.layout(f"Commit {sha[:12]}", "/tasks", body, poll=False)

    # --- approvals ---------------------------------------------------------------------------
    def _approval_item(self, a: dict[str, Any], title: str, csrf: str, back: str,
                       target: str = "", diffstat: str = "") -> Markup:
        e = self.e
        details = dict(a.get("details") or {})
        merge = details.get("merge_commit")
        what = {"deploy": f"deploy commit {str(merge or '?')[:12]} ({target or 'the configured target'})",
                "push": f"push the main branch (commit {str(merge or '?')[:12]}) to the remote",
                "merge": "merge the task's branch into main"}.get(a["action"], a["action"])
        buttons = Markup("")
        if a["status"] == "pending":
            buttons = e.render(
                '<form method="post" action="/approvals/{t}/approve" class="inline"><input type="hidden" '
                'name="csrf" value="{c}"><input type="hidden" name="next" value="{b}"><button class="approve" '
                'id="approve-{t}">Approve</button></form> <form method="post" action="/approvals/{t}/reject" '
                'class="inline"><input type="hidden" name="csrf" value="{c}"><input type="hidden" name="next" '
                'value="{b}"><button class="reject" id="reject-{t}">Reject</button></form>',
                t=a["task_id"], c=csrf, b=back)
        decided = e.render(" · {s} by {by} at {at}", s=a["status"], by=a.get("decided_by") or "-",
                           at=a.get("decided_at") or "-") if a.get("decided_at") else Markup("")
        commit_link = e.render(' <a href="/commit/{s}?task={t}">see the commit</a>', s=merge, t=a["task_id"]) \
            if isinstance(merge, str) and merge else Markup("")
        stat = e.render('<pre class="diffstat">{d}</pre>', d=diffstat) if diffstat else Markup("")
        return e.render(
            '<div class="approval {st}" data-task="{t}"><p><b>{action}</b> for <a href="/tasks/{t}">{t}</a> '
            '{title}<br>would: {what}{commit}<br><span class="muted">requested {req}{decided}</span></p>{stat}'
            '{buttons}</div>', st=a["status"], t=a["task_id"], action=a["action"], title=e.text(title, 140),
            what=what, commit=commit_link, req=a["requested_at"], decided=decided, stat=stat, buttons=buttons)

    def approvals(self, pending: list[dict[str, Any]], decided: list[dict[str, Any]], target: str,
                  stats: dict[str, str], csrf: str) -> Markup:
        e = self.e
        waiting = e.join(self._approval_item(a, a["title"], csrf, "/approvals", target,
                                             stats.get(a["task_id"], "")) for a in pending)
        done = e.join(self._approval_item(a, a["title"], csrf, "/approvals", target) for a in decided)
        live = e.render('<section class="card"><h2>Waiting ({n})</h2>{w}</section>'
                        '<section class="card"><h2>Recently decided</h2>{d}</section>', n=len(pending),
                        w=waiting or Markup("<p class='muted' id='no-pending'>nothing waits for a decision</p>"),
                        d=done or Markup("<p class='muted'>none</p>"))
        return self.layout("Approvals", "/approvals", live, pending=len(pending))

    # --- charts ------------------------------------------------------------------------------
    def charts(self, c: dict[str, Any]) -> Markup:
        e = self.e
        labels = [day_label(d) for d in c["days"]]
        tokens = charts.bars(e, labels, [("tokens", c["tokens"], "s1")], title="LLM tokens per day")
        dollars = charts.bars(e, labels, [("cost", c["cost"], "s2")], title="LLM cost per day (USD)", money=True)
        tasks = charts.bars(e, labels, [("completed", c["completed"], "s3"), ("failed", c["failed"], "s4")],
                            title="tasks completed and failed per day")
        agent_tokens = charts.hbars(e, [(r["agent"], r["tokens"] or 0) for r in c["per_agent"]],
                                    title="tokens per agent")
        agent_cost = charts.hbars(e, [(r["agent"], r["cost"] or 0.0) for r in c["per_agent"]],
                                  title="cost per agent (USD)", money=True)
        live = e.render(
            '<p class="muted">Last {n} days, since {since} (UTC).</p><section class="grid2">'
            '<div class="card"><h2>Tokens per day</h2>{tokens}</div><div class="card"><h2>Dollars per day</h2>'
            '{dollars}</div><div class="card"><h2>Tokens per agent</h2>{at}</div><div class="card"><h2>Dollars per '
            'agent</h2>{ac}</div><div class="card"><h2>Tasks completed / failed per day</h2>{tasks}</div>'
            '<div class="card"><h2>Task duration ({k} completed)</h2>{hist}</div></section>',
            n=len(c["days"]), since=c["since"], tokens=tokens, dollars=dollars, at=agent_tokens, ac=agent_cost,
            tasks=tasks, k=len(c["durations"]), hist=charts.duration_histogram(e, c["durations"]))
        return self.layout("Charts", "/charts", live)
