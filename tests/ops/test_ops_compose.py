"""docker-compose.yml as .ci/docker_check.sh runs it: every key translated, the healthcheck the image's."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from tests.conftest import REPO


def test_every_compose_key_becomes_a_docker_run_argument(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / ".ci" / "compose_run_args.py"), str(REPO / "docker-compose.yml"),
                          str(tmp_path / "cfg"), str(tmp_path / "env"), "ci-"],
                         capture_output=True, text=True, check=True).stdout
    args = out.rstrip("\0").split("\0")
    pairs = {(args[i], args[i + 1]) for i in range(len(args) - 1)}
    assert ("--restart", "always") in pairs and ("--stop-timeout", "45") in pairs
    assert ("-v", f"{tmp_path / 'cfg'}:/config:ro") in pairs and ("-v", "ci-data:/data") in pairs
    assert ("--cap-drop", "ALL") in pairs and "--read-only" in args
    assert ("--env-file", str(tmp_path / "env")) in pairs


def test_an_unknown_compose_key_fails_instead_of_being_left_out(tmp_path):
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    compose["services"]["ai-agents"]["privileged"] = True
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(compose))
    result = subprocess.run([sys.executable, str(REPO / ".ci" / "compose_run_args.py"), str(path), "c", "e", "p"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "privileged" in result.stderr


def test_compose_healthcheck_is_the_dockerfiles():
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    line = re.search(r"^HEALTHCHECK (.*)$", text, re.M).group(1)
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", line))
    command = re.search(r"CMD (\[.*\])", line).group(1)
    hc = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["ai-agents"]["healthcheck"]
    assert ["CMD", *yaml.safe_load(command)] == hc["test"]
    assert (options["interval"], options["timeout"], options["start-period"], int(options["retries"])) == (
        hc["interval"], hc["timeout"], hc["start_period"], hc["retries"])
