"""Metrics from real task and LLM rows, rendered as Prometheus text and scraped over HTTP."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from ai_agents.domain import TaskStatus, TaskType, iso, parse_iso, utcnow
from ai_agents.memory.database import Database
from ai_agents.memory.store import MemoryStore
from ai_agents.memory.tasks import TaskStore
from ai_agents.ops.health import HealthReport
from ai_agents.ops.metrics import (
    OPENMETRICS_CONTENT_TYPE,
    MetricsServer,
    collect_metrics,
    parse_listen,
    render_openmetrics,
    render_prometheus,
)

# name{label="value",...} value  -- label values may hold escaped \\ \" and \n.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                    r'(-?[0-9.e+-]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Strict enough for our output: every line is a HELP/TYPE comment or a well-formed sample."""
    assert text.endswith("\n")
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "summary", "histogram", "untyped"}
            assert name not in typed, f"TYPE twice for {name}"
            typed.add(name)
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        assert re.sub(r"_(sum|count)$", "", name) in typed or name in typed, f"sample before its TYPE: {name}"
        key = (name, tuple(LABEL.findall(labels)))
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value)
    return samples


@pytest.fixture
def stores(tmp_path):
    db = Database(tmp_path / "ai_agents.db")
    yield db, MemoryStore(db), TaskStore(db)
    db.close()


def _finished(db: Database, tasks: TaskStore, title: str, status: TaskStatus, seconds: float) -> None:
    task = tasks.create(TaskType.CODE, title, assigned_agent="developer")
    assert tasks.claim(task.id, "developer-1", 600)
    assert tasks.transition(task.id, status, expected=TaskStatus.IN_PROGRESS)
    # Real rows, with the claim pushed back so the duration is known exactly.
    row = db.query_one("SELECT finished_at FROM tasks WHERE id = ?", (task.id,))
    start = iso(parse_iso(row["finished_at"]) - timedelta(seconds=seconds))
    db.execute("UPDATE tasks SET started_at = ? WHERE id = ?", (start, task.id))


def seed(db: Database, memory: MemoryStore, tasks: TaskStore) -> None:
    for i, seconds in enumerate((10, 20, 30, 40)):
        _finished(db, tasks, f"feature {i}", TaskStatus.COMPLETED, seconds)
    _finished(db, tasks, "doomed", TaskStatus.FAILED, 100)
    _finished(db, tasks, "stuck", TaskStatus.ESCALATED, 50)
    tasks.create(TaskType.CODE, "waiting one")
    tasks.create(TaskType.ANALYSIS, "waiting two")
    memory.record_llm_call(agent="ceo", task_id=None, provider="openai", model="gpt-4o-mini",
                           tokens_in=1000, tokens_out=200, cost_usd=0.25)
    memory.record_llm_call(agent="developer", task_id=None, provider="openai", model="gpt-4o-mini",
                           tokens_in=500, tokens_out=100, cost_usd=0.0, cached=True)
    memory.record_llm_call(agent="developer", task_id=None, provider="openai", model="gpt-4o-mini",
                           error="rate limited")
    memory.record_llm_call(agent="qa", task_id=None, provider="anthropic", model="claude-3-5-haiku",
                           tokens_in=3000, tokens_out=700, cost_usd=1.5)
    # The last one happened two days ago: in the totals, not in "today".
    db.execute("UPDATE llm_calls SET timestamp = ? WHERE agent = 'qa'", (iso(utcnow() - timedelta(days=2)),))
    memory.set_state("heartbeat", {"pid": 1, "started_at": iso(utcnow()), "loop_at": iso(utcnow()),
                                   "check_interval": 60, "heartbeat_interval": 5, "queues": {"developer": 3, "qa": 0},
                                   "current_tasks": {}, "unhealthy_roles": [], "stopped_at": None})


def test_collect_metrics_figures(stores):
    db, memory, tasks = stores
    seed(db, memory, tasks)
    m = collect_metrics(db, memory, tasks)
    assert m["tasks_completed"] == 4
    assert m["tasks_failed"] == 1
    assert m["tasks_by_status"]["queued"] == 2
    assert m["tasks_by_status"]["escalated"] == 1
    assert m["tasks_by_status"]["cancelled"] == 0  # every status present, zero when unused
    assert m["success_rate"] == pytest.approx(4 / 6)
    d = m["task_duration_seconds"]
    assert d["count"] == 6
    assert d["avg"] == pytest.approx(250 / 6, abs=0.01)
    assert d["p50"] == pytest.approx(35, abs=0.01)  # sorted 10 20 30 40 50 100 -> between 30 and 40
    assert d["p95"] == pytest.approx(87.5, abs=0.01)  # position 4.75: 50 + 0.75 * 50
    assert m["errors"] == {"tasks": 2, "llm_calls": 1}
    assert m["error_count"] == 3
    llm = m["llm"]
    assert (llm["calls"], llm["cache_hits"], llm["tokens_in"], llm["tokens_out"]) == (4, 1, 4500, 1000)
    assert llm["cost_usd"] == pytest.approx(1.75)
    assert llm["calls_today"] == 3 and llm["tokens_today"] == 1800
    assert llm["cost_usd_today"] == pytest.approx(0.25)
    assert m["queue_depth"] == {"developer": 3, "qa": 0}  # from the heartbeat
    assert m["healthy"] is True
    assert collect_metrics(db, memory, tasks, queue_depths={"ceo": 1})["queue_depth"] == {"ceo": 1}


def test_empty_database_renders_valid_text(stores):
    db, memory, tasks = stores
    m = collect_metrics(db, memory, tasks)
    samples = parse_exposition(render_prometheus(m))
    assert samples[("ai_agents_tasks_total", (("status", "completed"),))] == 0
    assert samples[("ai_agents_healthy", ())] == 0  # no heartbeat
    assert not any(name.startswith("ai_agents_task_duration") for name, _ in samples)


def test_render_escapes_label_values(stores):
    db, memory, tasks = stores
    m = collect_metrics(db, memory, tasks, queue_depths={'odd "role"\\\nname': 1})
    text = render_prometheus(m)
    assert 'ai_agents_queue_depth{role="odd \\"role\\"\\\\\\nname"} 1.0' in text
    parse_exposition(text)


def test_server_scrape_over_http(stores):
    db, memory, tasks = stores
    seed(db, memory, tasks)
    health = {"report": HealthReport(True, "ok: running")}
    server = MetricsServer("127.0.0.1:0", lambda: render_prometheus(collect_metrics(db, memory, tasks)),
                           health=lambda: health["report"])
    server.start()
    try:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            samples = parse_exposition(resp.read().decode())
        assert samples[("ai_agents_tasks_total", (("status", "completed"),))] == 4
        assert samples[("ai_agents_tasks_total", (("status", "failed"),))] == 1
        assert samples[("ai_agents_tasks_by_status", (("status", "queued"),))] == 2
        assert samples[("ai_agents_task_duration_seconds", (("quantile", "0.5"),))] == pytest.approx(35, abs=0.01)
        assert samples[("ai_agents_task_duration_seconds", (("quantile", "0.95"),))] == pytest.approx(87.5, abs=0.01)
        assert samples[("ai_agents_task_duration_seconds_count", ())] == 6
        assert samples[("ai_agents_llm_tokens_total", (("direction", "input"),))] == 4500
        assert samples[("ai_agents_llm_tokens_total", (("direction", "output"),))] == 1000
        assert samples[("ai_agents_llm_cost_usd_total", ())] == pytest.approx(1.75)
        assert samples[("ai_agents_llm_cost_usd_today", ())] == pytest.approx(0.25)
        assert samples[("ai_agents_llm_cache_hits_total", ())] == 1
        assert samples[("ai_agents_errors_total", (("source", "llm"),))] == 1
        assert samples[("ai_agents_queue_depth", (("role", "developer"),))] == 3
        assert samples[("ai_agents_healthy", ())] == 1

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.read() == b"ok: running\n"
        health["report"] = HealthReport(False, "heartbeat 42 s old")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert err.value.code == 503 and err.value.read() == b"heartbeat 42 s old\n"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert err.value.code == 404
    finally:
        started = time.perf_counter()
        server.stop()
    assert time.perf_counter() - started < 2  # serve_forever left its loop; no join timeout was needed
    assert "metrics-http" not in [t.name for t in threading.enumerate()]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_render_failure_is_a_500_and_the_server_keeps_serving():
    calls = []

    def render() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return "# TYPE x gauge\nx 1\n"

    server = MetricsServer(":0", render)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.address[1]}/metrics"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=5)
        assert err.value.code == 500
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.read() == b"# TYPE x gauge\nx 1\n"
    finally:
        server.stop()


def test_non_loopback_needs_an_explicit_opt_in():
    with pytest.raises(ValueError, match="not loopback"):
        MetricsServer("0.0.0.0:9464", str)
    with pytest.raises(ValueError, match="not loopback"):
        MetricsServer("metrics.example.com:9464", str)
    assert MetricsServer("0.0.0.0:9464", str, allow_remote=True).address == ("0.0.0.0", 9464)
    assert MetricsServer("localhost:9464", str).host == "localhost"


@pytest.mark.parametrize(("listen", "expected"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), (":9464", ("127.0.0.1", 9464)), ("9464", ("127.0.0.1", 9464)),
    ("[::1]:9464", ("::1", 9464)),
])
def test_parse_listen(listen, expected):
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["127.0.0.1", "host:port", "127.0.0.1:70000", ""])
def test_parse_listen_rejects(listen):
    with pytest.raises(ValueError):
        parse_listen(listen)


def test_openmetrics_and_text_expositions_parse_with_prometheus_clients_parsers(stores):
    """OpenMetrics forbids one family name for two types (the old ai_agents_tasks counter + gauge clash)."""
    db, memory, tasks = stores
    seed(db, memory, tasks)
    m = collect_metrics(db, memory, tasks, queue_depths={'odd "role"\\\nname': 1, "developer": 3})
    families = {f.name: f for f in parse_openmetrics(render_openmetrics(m))}  # raises on any violation
    assert families["ai_agents_tasks"].type == "counter"
    assert families["ai_agents_tasks_by_status"].type == "gauge"
    assert families["ai_agents_task_duration_seconds"].type == "summary"
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert values[("ai_agents_tasks_total", (("status", "completed"),))] == 4
    assert values[("ai_agents_tasks_by_status", (("status", "queued"),))] == 2
    assert values[("ai_agents_task_duration_seconds", (("quantile", "0.95"),))] == pytest.approx(87.5, abs=0.01)
    assert values[("ai_agents_queue_depth", (("role", 'odd "role"\\\nname'),))] == 1
    assert values[("ai_agents_llm_cost_usd_total", ())] == pytest.approx(1.75)
    text = {f.name: f.type for f in parse_text(render_prometheus(m))}
    assert text["ai_agents_tasks"] == "counter" and text["ai_agents_tasks_by_status"] == "gauge"
    # Both formats carry the same families.
    assert set(text) == set(families)


def test_server_answers_openmetrics_to_a_scraper_that_asks_for_it(stores):
    db, memory, tasks = stores
    seed(db, memory, tasks)
    server = MetricsServer(":0", lambda: render_prometheus(collect_metrics(db, memory, tasks)),
                           render_openmetrics=lambda: render_openmetrics(collect_metrics(db, memory, tasks)))
    server.start()
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{server.address[1]}/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.headers["Content-Type"] == OPENMETRICS_CONTENT_TYPE
            body = resp.read().decode()
        assert body.endswith("# EOF\n")
        assert any(f.name == "ai_agents_tasks_by_status" for f in parse_openmetrics(body))
    finally:
        server.stop()
