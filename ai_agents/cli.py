"""The command line: parse, load config, hand over. Errors are one sentence on stderr, exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ai_agents import __version__
from ai_agents.errors import AgentsError, ConfigError

EXIT_USAGE = 2


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ai-agents", description="Always-on autonomous AI agent daemon.")
    p.add_argument("--version", action="version", version=f"ai-agents {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("--config", type=Path, default=Path("config.yaml"), help="path to config.yaml")
        return c

    cmd("run", "start the daemon (stops cleanly on SIGTERM or SIGINT)")
    cmd("check-config", "validate config.yaml and report every problem")
    s = cmd("submit", "add a queued task for the daemon")
    s.add_argument("text", help="the task: a title, optionally followed by a blank line and a description")
    s.add_argument("--type", choices=["code", "analysis", "decision"], default="code")
    s.add_argument("--priority", choices=["high", "medium", "low"], default="medium")
    s.add_argument("--description", default="", help="longer description")
    t = cmd("tasks", "list tasks by status and agent")
    t.add_argument("--status", choices=["queued", "in_progress", "completed", "failed", "cancelled", "escalated",
                                        "awaiting_approval"])
    t.add_argument("--json", action="store_true")
    t.add_argument("--limit", type=_count(1), default=200, help="show at most this many tasks (default 200)")
    t.add_argument("--offset", type=_count(0), default=0, help="skip this many tasks first (oldest first)")
    t.add_argument("--all", action="store_true", help="also the CEO's own generation and escalation tasks")
    st = cmd("status", "daemon heartbeat, queues, tasks, LLM spend and budget")
    st.add_argument("--json", action="store_true")
    st.add_argument("--all", action="store_true", help="count the CEO's own generation and escalation tasks too")
    cmd("health", "exit 0 when the daemon is alive and its loop is not stuck, 1 otherwise")
    cmd("doctor", "check config, LLM providers, workspace, git and test framework")
    d = cmd("demo", "run the whole daemon end to end on the built-in scripted model (no API key)")
    d.add_argument("--workspace", type=Path, default=None, help="where to keep the demo workspace")
    d.add_argument("--scenario", choices=["story", "js", "deps"], default="story",
                   help="story: the Python story (default, offline); js: a jest project (needs the npm registry "
                        "for jest); deps: a task whose code needs an allow-listed PyPI package (needs PyPI)")
    for name, verb in (("approve", "approve"), ("reject", "reject")):
        a = cmd(name, f"{verb} a task waiting for approval")
        a.add_argument("task_id")
    db = cmd("dashboard", "serve the web dashboard (loopback by default; see dashboard: in config.yaml)")
    db.add_argument("--listen", default=None, help="host:port, default dashboard.listen or 127.0.0.1:8080")
    ap = cmd("approvals", "list pending approvals")
    ap.add_argument("--all", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ai_agents import commands  # imported late: --help stays fast

    handler = getattr(commands, "cmd_" + args.command.replace("-", "_"))
    try:
        return int(handler(args) or 0)
    except ConfigError as e:
        print(f"ai-agents: {e}", file=sys.stderr)
        if len(e.problems) > 1:
            for problem in e.problems:
                print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except AgentsError as e:
        print(f"ai-agents: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


