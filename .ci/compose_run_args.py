"""Print `docker run` arguments (NUL-separated) for docker-compose.yml's ai-agents service.

Used by .ci/docker_check.sh, which runs the image under a real dockerd with the compose
file's own settings without needing the compose tool. Every key of the service must be
translated here or be listed as not applicable: a key added to the compose file later
makes this script fail instead of being silently left out of the check.

    python .ci/compose_run_args.py COMPOSE_FILE CONFIG_DIR ENV_FILE VOLUME_PREFIX
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

# build/image: the check builds and names the image itself; healthcheck: compared with the
# image's HEALTHCHECK (--same-healthcheck), which the container then uses.
NOT_APPLICABLE = {"build", "image", "healthcheck"}


def seconds(value: str | int) -> int:
    match = re.fullmatch(r"(\d+)s?", str(value))
    if not match:
        raise SystemExit(f"compose_run_args: cannot read a duration from {value!r}")
    return int(match.group(1))


def main(compose: str, config_dir: str, env_file: str, prefix: str) -> list[str]:
    service = yaml.safe_load(Path(compose).read_text())["services"]["ai-agents"]
    args: list[str] = []
    for key, value in service.items():
        if key in NOT_APPLICABLE:
            continue
        if key == "restart":
            args += ["--restart", value]
        elif key == "env_file":
            args += ["--env-file", env_file]
        elif key == "volumes":
            for spec in value:
                if spec.startswith("${AI_AGENTS_CONFIG_DIR"):
                    args += ["-v", config_dir + spec[spec.index("}") + 1:]]
                else:  # a named volume, private to the check
                    args += ["-v", prefix + spec]
        elif key == "stop_grace_period":
            args += ["--stop-timeout", str(seconds(value))]
        elif key == "stop_signal":
            args += ["--stop-signal", value]
        elif key == "read_only":
            args += ["--read-only"] if value else []
        elif key == "tmpfs":
            for spec in value:
                args += ["--tmpfs", spec]
        elif key == "cap_drop":
            for cap in value:
                args += ["--cap-drop", cap]
        elif key == "security_opt":
            for opt in value:
                args += ["--security-opt", opt]
        elif key == "logging":
            args += ["--log-driver", value["driver"]]
            for name, opt in (value.get("options") or {}).items():
                args += ["--log-opt", f"{name}={opt}"]
        else:
            raise SystemExit(f"compose_run_args: docker-compose.yml key {key!r} is not translated; "
                             "teach .ci/compose_run_args.py about it")
    return args


def same_healthcheck(compose: str, image_json: str) -> bool:
    """The compose healthcheck equals the image's HEALTHCHECK (`docker inspect` .Config.Healthcheck)."""
    hc = yaml.safe_load(Path(compose).read_text())["services"]["ai-agents"]["healthcheck"]
    image = json.loads(image_json) or {}
    ns = 1_000_000_000
    want = {"Test": hc["test"], "Interval": seconds(hc["interval"]) * ns, "Timeout": seconds(hc["timeout"]) * ns,
            "StartPeriod": seconds(hc["start_period"]) * ns, "Retries": hc["retries"]}
    got = {k: image.get(k) for k in want}
    if got != want:
        print(f"compose healthcheck {want} != image HEALTHCHECK {got}")
    return got == want


if __name__ == "__main__":
    if sys.argv[1] == "--same-healthcheck":
        raise SystemExit(0 if same_healthcheck(sys.argv[2], sys.argv[3]) else 1)
    sys.stdout.write("\0".join(main(*sys.argv[1:5])) + "\0")
