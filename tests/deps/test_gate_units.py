"""The supply-chain gate's rules and the installer's time limit (no registry needed)."""

from __future__ import annotations

import socket
import threading

import pytest

from ai_agents.config.models import Settings
from ai_agents.deps.policy import Verdict, decide
from ai_agents.deps.python_env import Pinned, ProjectPythonEnv, lock_text, manifest_text
from ai_agents.errors import DependencyError


def settings(**deps: object) -> Settings:
    approvals = deps.pop("approvals", [])
    return Settings.model_validate({"dependencies": deps, "approvals": {"required_for": approvals}})


def test_deny_wins_over_allow_and_names_are_canonical():
    s = settings(allow=["python-dateutil", "@types/*", "*"], deny=["evil-*"])
    assert decide(s, "Python_Dateutil")[0] == Verdict.ALLOW
    assert decide(s, "@types/node")[0] == Verdict.ALLOW
    assert decide(s, "evil-pkg")[0] == Verdict.DENY
    assert decide(s, "EVIL_pkg")[0] == Verdict.DENY  # the index treats it as evil-pkg


def test_unlisted_needs_approval_only_when_configured():
    assert decide(settings(allow=["attrs"]), "requests")[0] == Verdict.DENY
    verdict, why = decide(settings(allow=["attrs"], approvals=["dependency"]), "requests")
    assert verdict == Verdict.APPROVAL and "not in dependencies.allow" in why


def test_lock_and_manifest_merge_and_sort():
    lock = lock_text([Pinned("attrs", "23.2.0", "a" * 64)], "zed==1 --hash=sha256:" + "b" * 64 + "\n")
    assert lock.splitlines()[1:] == [f"attrs==23.2.0 --hash=sha256:{'a' * 64}", f"zed==1 --hash=sha256:{'b' * 64}"]
    assert manifest_text({"attrs": "23.2.0"}, "attrs>=20\nrequests==2.0  # http\n") == \
        "attrs==23.2.0\nrequests==2.0\n"


@pytest.fixture
def silent_index():
    """An index that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/simple"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_an_install_that_hangs_is_killed_at_the_time_limit(tmp_path, silent_index):
    env = ProjectPythonEnv(tmp_path / "project-env", index_url=silent_index, timeout=60)
    env.ensure()  # the venv itself, within the generous limit
    env.timeout = 2  # the index never answers: any limit is reached; a short one keeps the suite quick
    with pytest.raises(DependencyError, match="timed out after 2s"):
        env.resolve(["attrs==23.2.0"])
    assert not list(env.site_packages().glob("attr*"))
