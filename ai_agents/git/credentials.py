"""Credentials for an https remote, handed to one git call at a time and never stored.

The token reaches git through a ``GIT_ASKPASS`` helper that reads it from that
call's environment: it is not in the command line (visible in ``ps``), not in the
remote URL and so not in ``.git/config``, and not in any log line.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

_ASKPASS = """#!/bin/sh
# git asks "Username for ..." then "Password for ..."; answer from this call's environment.
case "$1" in
  [Uu]sername*) printf '%s\\n' "$AI_AGENTS_GIT_USERNAME" ;;
  *) printf '%s\\n' "$AI_AGENTS_GIT_TOKEN" ;;
esac
"""
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
# GitHub accepts any user name with a token; this one documents what it is.
DEFAULT_USERNAME = "x-access-token"


def redact_url(text: str) -> str:
    """``https://user:tok@host/x`` -> ``https://***@host/x`` anywhere in ``text``."""
    return _USERINFO.sub("***@", text)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(url without user info, user, password) so a token in a URL never reaches .git/config."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return url, None, None
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host)), parts.username, parts.password


class Credentials:
    """A user name and a token (given, or read from ``token_env`` at call time)."""

    def __init__(self, username: str | None = None, token: str | SecretStr | None = None,
                 token_env: str | None = None, environ: Mapping[str, str] | None = None):
        self.username = username
        self._token = token.get_secret_value() if isinstance(token, SecretStr) else token
        self.token_env = token_env
        self._environ = environ if environ is not None else os.environ

    def token(self) -> str | None:
        if self._token:
            return self._token
        if self.token_env:
            return self._environ.get(self.token_env) or None
        return None

    def with_url_credentials(self, user: str | None, password: str | None) -> Credentials:
        """Credentials found in a configured URL, used when none were configured explicitly."""
        if self.token() or not password:
            return self
        return Credentials(self.username or user, password)

    @contextmanager
    def for_call(self) -> Iterator[tuple[dict[str, str], list[tuple[str, str]]]]:
        """(environment, extra git config) for one network call; the helper is deleted afterwards."""
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if "GIT_SSH_COMMAND" not in self._environ:
            # Never wait for a passphrase or host-key prompt nobody will answer.
            env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o ConnectTimeout=15"
        token = self.token()
        if not token:
            yield env, []
            return
        folder = tempfile.mkdtemp(prefix="ai-agents-askpass-")
        try:
            script = os.path.join(folder, "askpass.sh")
            with open(script, "w", encoding="utf-8") as fh:
                fh.write(_ASKPASS)
            os.chmod(script, stat.S_IRWXU)
            env.update({"GIT_ASKPASS": script, "AI_AGENTS_GIT_USERNAME": self.username or DEFAULT_USERNAME,
                        "AI_AGENTS_GIT_TOKEN": token})
            # An empty helper list: a configured "store" helper must not save the token to disk.
            yield env, [("credential.helper", "")]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
