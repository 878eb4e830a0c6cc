# ai-agents daemon image. Build: docker build -t ai-agents .
# Run with docker-compose.yml (restart policy, volumes, config dir, stop grace).
# For reproducible builds pin the base by digest: python:3.11-slim@sha256:...
FROM python:3.11-slim

# git: the workspace is a git repository; openssh-client: ssh remotes and the
# "direct" deployment; bubblewrap: the test sandbox (see the README: inside a
# default Docker container bwrap cannot create its namespaces, so the daemon's
# sandbox=auto falls back and the container itself is the boundary); tini: PID 1
# that reaps orphaned git/test grandchildren and forwards SIGTERM to the daemon.
# Versions are not pinned on purpose: Debian's security updates replace the old
# package versions in the archive, so a pin breaks the build within weeks; the
# base image tag fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap ca-certificates openssh-client tini \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so bind-mounted host directories can be chowned to it (10001:10001).
RUN groupadd --system --gid 10001 ai-agents \
    && useradd --system --uid 10001 --gid ai-agents --home-dir /data --shell /usr/sbin/nologin ai-agents \
    && mkdir -p /data /workspace /logs /config \
    && chown ai-agents:ai-agents /data /workspace /logs

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/data \
    GIT_TERMINAL_PROMPT=0

# Dependencies in their own layer: it is rebuilt only when requirements.txt changes.
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

WORKDIR /app
# Code owned by root: the daemon (uid 10001) can read it but not rewrite itself.
COPY . .

# Numeric, so Kubernetes runAsNonRoot and host tools can tell it is not root.
USER 10001:10001
# /data: SQLite database, backups, git/ssh config (HOME); /workspace: the git
# repository the agents work in; /logs: the rotating log file. /config is not a
# volume: bind-mount the host directory holding config.yaml there (read-only).
VOLUME ["/data", "/workspace", "/logs"]

# Prometheus metrics when config.yaml sets metrics.listen to 0.0.0.0:9464.
EXPOSE 9464

# Healthy = fresh heartbeat, main loop cycling, no unhealthy role (reads SQLite).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "main.py", "health", "--config", "/config/config.yaml"]

# The daemon drains in-flight tasks for orchestrator.shutdown_grace (30 s) on
# SIGTERM: stop it with `docker stop -t 45` (compose sets stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["/opt/venv/bin/python", "main.py", "run", "--config", "/config/config.yaml"]
