"""The dashboard's HTTP server: routes, authentication, CSRF, security headers.

Rules it enforces on every request:

* Loopback by default. A non-loopback address needs ``dashboard.token`` (the config
  refuses to load otherwise, and so does this class). With a token set, every
  request is authenticated: ``Authorization: Bearer <token>`` or the HttpOnly,
  SameSite=Strict session cookie the login form sets. Anything else gets 401.
* Without a token (loopback only) the Host header must name a loopback host, so a
  web page elsewhere cannot reach it through DNS rebinding.
* The only state-changing requests are POST approve/reject (and login): they need
  the CSRF token rendered in the page and a same-origin ``Origin`` when sent.
  They run :func:`ai_agents.commands.decide_approval`, what the CLI's approve runs.
* Every response forbids inline script, framing and sniffing (Content-Security-Policy).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

from ai_agents.config.models import Settings, listen_is_loopback
from ai_agents.dashboard.html import Escaper
from ai_agents.dashboard.pages import Pages
from ai_agents.dashboard.queries import SHA, TASK_ID, DashboardData, TaskFilter
from ai_agents.domain import TaskStatus, TaskType
from ai_agents.errors import ConfigError
from ai_agents.logging_setup import Redactor
from ai_agents.memory import Storage
from ai_agents.memory.approvals import decide_approval
from ai_agents.memory.backends import from_config as storage_from_config
from ai_agents.ops.listen import Listener, parse_listen

log = structlog.get_logger("ai_agents.dashboard")

DEFAULT_LISTEN = "127.0.0.1:8080"
COOKIE = "aia_dashboard"
MAX_FORM_BYTES = 8192
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
STATIC = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}


class DashboardServer:
    """Serves the pages from a background thread (the daemon) or the foreground (the CLI)."""

    def __init__(self, settings: Settings, listen: str | None = None, *, redactor: Redactor | None = None,
                 db: Storage | None = None):
        cfg = settings.dashboard
        self.listen = listen or cfg.listen or DEFAULT_LISTEN
        self.host, self.port = parse_listen(self.listen)
        self.token = cfg.token.get_secret_value() if cfg.token else None
        if self.token is None and not listen_is_loopback(self.listen):
            raise ConfigError(f"the dashboard would listen on {self.listen}, which is not loopback, without "
                              "dashboard.token: set one (e.g. token: ${DASHBOARD_TOKEN}) or listen on 127.0.0.1")
        self.secret = secrets.token_bytes(32)  # signs the CSRF token; a restart invalidates open forms
        self.data = DashboardData(settings, db or storage_from_config(settings.memory))
        self.escaper = Escaper(redactor or Redactor(settings.secret_values()))
        self.pages = Pages(self.escaper, cfg.poll_seconds, login_enabled=self.token is not None)
        self._listener = Listener(self.listen, type("DashboardHandler", (_Handler,), {"owner": self}),
                                  name="dashboard-http", threaded=True)

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return self._listener.address

    @property
    def url(self) -> str:
        return self._listener.url

    def start(self) -> None:
        """Serve from a background thread (the daemon's way, and the CLI's while its main thread waits)."""
        self._listener.start()
        log.info("dashboard_started", url=self.url, authenticated=self.token is not None)

    def stop(self, timeout: float = 5.0) -> None:
        if self._listener.stop(timeout):
            log.info("dashboard_stopped")

    # --- security ----------------------------------------------------------------------------
    def session_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"ai-agents dashboard session", hashlib.sha256).hexdigest()

    def csrf_token(self) -> str:
        return hmac.new(self.secret, b"csrf", hashlib.sha256).hexdigest()

    def authenticated(self, headers: Any) -> bool:
        if self.token is None:
            return True
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("Cookie", ""))
        except Exception:
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.session_value().encode())

    def host_allowed(self, headers: Any) -> bool:
        """Without a token, only loopback Host names (no DNS rebinding); with one, the token decides."""
        if self.token is not None:
            return True
        host = (headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in LOOPBACK_HOSTS


def _safe_next(value: str, default: str = "/") -> str:
    """Only a local path: never '//host' or a scheme (no open redirect)."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else default


class _Handler(BaseHTTPRequestHandler):
    owner: DashboardServer
    timeout = 20
    server_version = "ai-agents-dashboard"
    sys_version = ""

    # --- plumbing ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes | str, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "same-origin")  # no-referrer would make forms send Origin: null
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": location, **(headers or {})})

    def _gate(self) -> bool:
        """Host check and authentication; answers the request itself when refused."""
        if not self.owner.host_allowed(self.headers):
            self._send(HTTPStatus.FORBIDDEN, "forbidden: unexpected Host header\n", "text/plain; charset=utf-8")
            return False
        if not self.owner.authenticated(self.headers):
            path = urlsplit(self.path).path
            self._send(HTTPStatus.UNAUTHORIZED, self.owner.pages.login(next_url=_safe_next(path)),
                       headers={"WWW-Authenticate": 'Bearer realm="ai-agents dashboard"'})
            return False
        return True

    def _form(self) -> dict[str, str] | None:
        text = (self.headers.get("Content-Length") or "0").strip()
        length = int(text) if text.isdigit() else -1
        if not 0 <= length <= MAX_FORM_BYTES:
            return None
        raw = self.rfile.read(length).decode("utf-8", errors="replace")
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None:
            return True  # not sent by every client; the CSRF token still has to match
        return urlsplit(origin).netloc.lower() == (self.headers.get("Host") or "").lower()

    # --- methods -------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        try:
            if not self._gate():
                return
            self._get()
        except Exception as e:  # a bad page must not take the server down
            log.exception("dashboard_page_failed", path=urlsplit(self.path).path)
            self._send(500, self.owner.pages.error(500, f"this page failed: {type(e).__name__}"))

    def do_POST(self) -> None:
        try:
            self._post()
        except Exception as e:
            log.exception("dashboard_post_failed", path=urlsplit(self.path).path)
            self._send(500, self.owner.pages.error(500, f"the request failed: {type(e).__name__}"))

    # --- routes --------------------------------------------------------------------------------
    def _get(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
        o, pages, data = self.owner, self.owner.pages, self.owner.data
        parts = [p for p in path.split("/") if p]
        if path.startswith("/static/") and len(parts) == 2 and parts[1] in STATIC:
            body = resources.files("ai_agents.dashboard").joinpath("static", parts[1]).read_bytes()
            self._send(200, body, STATIC[parts[1]], {"Cache-Control": "max-age=300"})
        elif path == "/":
            self._send(200, pages.overview(data.overview()))
        elif path == "/tasks":
            flt = TaskFilter(
                q=query.get("q", "").strip()[:200],
                status=query.get("status", "") if query.get("status") in {s.value for s in TaskStatus} else "",
                type=query.get("type", "") if query.get("type") in {t.value for t in TaskType} else "",
                agent=query.get("agent", "")[:64], all=query.get("all") == "1",
                page=int(query["page"]) if query.get("page", "").isdigit() else 1)
            self._send(200, pages.tasks(data.task_page(flt)))
        elif len(parts) == 2 and parts[0] == "tasks":
            task = data.task(parts[1])
            if task is None:
                self._send(404, pages.error(404, "no such task"))
                return
            shas = data.task_commits(task)
            commits, diffs = [], []
            for sha in shas:
                text = data.show(sha, patch=False)
                subject = text.split("\n\n", 1)[1].strip().splitlines()[0] if "\n\n" in text else ""
                commits.append((sha, subject))
                if not text.startswith("commit") or "\nMerge:" not in text.split("\n\n", 1)[0]:
                    diffs.append(data.show(sha))
            self._send(200, pages.task(task, data.timeline(task), commits, "\n".join(diffs), o.csrf_token(),
                                       data.deploy_target()))
        elif len(parts) == 2 and parts[0] == "commit" and SHA.fullmatch(parts[1]):
            task_id = query.get("task", "")
            self._send(200, pages.commit(parts[1], data.show(parts[1]),
                                         task_id if TASK_ID.fullmatch(task_id) else None))
        elif path == "/approvals":
            pending, decided = data.approvals()
            stats = {a["task_id"]: data.show(a["details"]["merge_commit"], patch=False)
                     for a in pending if isinstance(a["details"].get("merge_commit"), str)}
            self._send(200, pages.approvals(pending, decided, data.deploy_target(), stats, o.csrf_token()))
        elif path == "/charts":
            self._send(200, pages.charts(data.charts()))
        elif path == "/logout":
            self._redirect("/", {"Set-Cookie": f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"})
        elif path == "/login":
            self._redirect("/")
        else:
            self._send(404, pages.error(404, "no such page"))

    def _post(self) -> None:
        o = self.owner
        path = urlsplit(self.path).path
        if not o.host_allowed(self.headers):
            self._send(HTTPStatus.FORBIDDEN, "forbidden: unexpected Host header\n", "text/plain; charset=utf-8")
            return
        form = self._form()
        if form is None:
            self._send(HTTPStatus.BAD_REQUEST, "form missing, malformed or too large\n", "text/plain; charset=utf-8")
            return
        if path == "/login" and o.token is not None:
            given = form.get("token", "")
            if hmac.compare_digest(given.encode(), o.token.encode()):
                log.info("dashboard_login", client=self.client_address[0])
                self._redirect(_safe_next(form.get("next", "/")), {
                    "Set-Cookie": f"{COOKIE}={o.session_value()}; Path=/; HttpOnly; SameSite=Strict"})
            else:
                log.warning("dashboard_login_refused", client=self.client_address[0])
                time.sleep(0.5)  # slows guessing
                self._send(HTTPStatus.UNAUTHORIZED, o.pages.login("Wrong token.", _safe_next(form.get("next", "/"))))
            return
        if not o.authenticated(self.headers):
            self._send(HTTPStatus.UNAUTHORIZED, o.pages.login(), headers={"WWW-Authenticate": "Bearer"})
            return
        if not (self._same_origin() and hmac.compare_digest(form.get("csrf", "").encode(), o.csrf_token().encode())):
            log.warning("dashboard_csrf_refused", client=self.client_address[0], path=path)
            self._send(HTTPStatus.FORBIDDEN, o.pages.error(403, "refused: missing or stale form token (CSRF); "
                                                                "reload the page and try again"))
            return
        parts = [p for p in path.split("/") if p]
        if len(parts) == 3 and parts[0] == "approvals" and parts[2] in ("approve", "reject") \
                and TASK_ID.fullmatch(parts[1]):
            who = f"dashboard ({self.client_address[0]})"
            row = decide_approval(o.data.tasks, o.data.memory, parts[1], approved=parts[2] == "approve",
                                  decided_by=who)
            if row is None:
                self._send(HTTPStatus.CONFLICT, o.pages.error(409, f"task {parts[1]} has no pending approval"))
                return
            log.info("dashboard_approval_decided", task_id=parts[1], action=row["action"], status=row["status"],
                     by=who)
            self._redirect(_safe_next(form.get("next", "/approvals"), "/approvals"))
            return
        self._send(404, o.pages.error(404, "no such action"))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("dashboard_request", client=self.client_address[0], line=format % args)
