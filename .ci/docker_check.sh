#!/usr/bin/env bash
# Build the image and run it under a REAL Docker engine with docker-compose.yml's settings.
#     bash .ci/docker_check.sh [VENV]          (VENV defaults to .venv: yaml, the fake LLM server)
# Exit 0: every check passed; 1: a check failed; 3: this machine cannot run Docker (the
# reason is printed). Called by .ci/run after the tests.
#
# What it does: installs docker.io (apt) when dockerd is missing; starts its own dockerd
# on a private socket (overlay2, else vfs; no bridge, no iptables: everything runs on the
# host network, so no traffic leaves 127.0.0.1), with its data under $CI_CACHE so later
# runs reuse the images; builds the Dockerfile as users get it. When no registry serves
# its base image (Docker Hub is not reachable here), a LOCAL STAND-IN tagged with the same
# name is made from a Debian 12 rootfs (debootstrap from apt's mirror, Debian's Python
# 3.11, this machine's CA certificates), and the output says so. Then the container runs
# with the compose file's settings (.ci/compose_run_args.py), talking to the fake LLM
# server on 127.0.0.1, and these are checked:
#   healthy within the start period; `docker logs` is JSON lines (jq); uid 10001;
#   a config edit on the host (a new inode, as editors do) reloaded live; kill -9 of the
#   daemon process -> restarted by `restart: always`; a main loop blocked on SQLite's
#   write lock -> the in-daemon watchdog exits 70 -> restarted; `docker stop` exits 0
#   within the grace; `docker kill` is a manual stop (not restarted).
set -uo pipefail
cd "$(dirname "$0")/.."
. .ci/lib_check.sh docker_check "${1:-.venv}" "starting dockerd needs root"   # REPO VENV T0; say ok fail skip check_done
missing=""
command -v dockerd >/dev/null || missing="$missing docker.io"
command -v jq >/dev/null || missing="$missing jq"
command -v debootstrap >/dev/null || missing="$missing debootstrap"
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt_install docker_check $missing >/dev/null || skip "could not install$missing"
fi
DOCKER=/usr/bin/docker   # docker.io's client, matching its dockerd
[ -x "$DOCKER" ] || DOCKER=$(command -v docker) || skip "no docker client"

# --- a private dockerd ----------------------------------------------------------------
mkdir -p "$CI_CACHE"
SOCK=/run/ai-agents-ci-docker.sock
export DOCKER_HOST=unix://$SOCK DOCKER_BUILDKIT=0
DOCKERD_PID=""
WORK=$(mktemp -d /tmp/ai-agents-docker-check.XXXXXX)
CONTAINER=ai-agents-ci-check
VOLUMES="ai-agents-ci-"
FAKE_PID=""

cleanup() {
    if [ -n "$DOCKERD_PID" ]; then
        $DOCKER rm -f "$CONTAINER" >/dev/null 2>&1
        for v in data workspace logs; do $DOCKER volume rm "${VOLUMES}$v" >/dev/null 2>&1; done
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$DOCKERD_PID" 2>/dev/null
    fi
    [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 1" TERM INT

start_dockerd() {
    local driver=$1
    rm -f "$SOCK"
    dockerd --host "$DOCKER_HOST" --data-root "$CI_CACHE/docker-$driver" --exec-root /run/ai-agents-ci-docker \
        --pidfile /run/ai-agents-ci-docker.pid --storage-driver "$driver" --bridge=none --iptables=false \
        --ip-masq=false >"$CI_CACHE/dockerd-$driver.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do
        $DOCKER version >/dev/null 2>&1 && return 0
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.5
    done
    kill "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
    DOCKERD_PID=""
    say "dockerd with --storage-driver $driver did not start; the end of its log:"
    tail -3 "$CI_CACHE/dockerd-$driver.log"
    return 1
}
leftover=$(cat /run/ai-agents-ci-docker.pid 2>/dev/null)
if [ -n "$leftover" ] && [ "$(cat "/proc/$leftover/comm" 2>/dev/null)" = dockerd ]; then
    say "stopping the dockerd (pid $leftover) an interrupted earlier run left behind"
    kill "$leftover"
    for _ in $(seq 1 30); do kill -0 "$leftover" 2>/dev/null || break; sleep 0.5; done
fi
if start_dockerd overlay2; then
    say "dockerd $($DOCKER version -f '{{.Server.Version}}') running (storage driver overlay2)"
elif start_dockerd vfs; then
    say "dockerd $($DOCKER version -f '{{.Server.Version}}') running (storage driver vfs: overlay2 failed here)"
else
    skip "dockerd starts with neither overlay2 nor vfs on this machine (see $CI_CACHE/dockerd-*.log)"
fi

# --- the base image, or a local stand-in ------------------------------------------------
BASE=$(awk '/^FROM /{print $2; exit}' Dockerfile)
if $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
    standin=$($DOCKER image inspect -f '{{index .Config.Labels "ai-agents-ci.stand-in"}}' "$BASE" 2>/dev/null)
    if [ -n "$standin" ]; then
        say "NOTE: $BASE is a LOCAL STAND-IN ($standin), cached from an earlier run: no registry serves it here"
    else
        say "base image $BASE present"
    fi
elif timeout 60 $DOCKER pull -q "$BASE" >/dev/null 2>&1; then
    say "base image $BASE pulled from its registry"
else
    say "NOTE: no registry serves $BASE here (Docker Hub is unreachable); building a LOCAL STAND-IN tagged $BASE"
    say "      from a Debian 12 rootfs (debootstrap, Debian's Python 3.11, this machine's CA certificates)."
    say "      The Dockerfile is unchanged; with registry access the real $BASE is used."
    rootfs=$(debian_rootfs python "python3,python3-venv,python-is-python3,ca-certificates") \
        || skip "cannot make the stand-in base image: debootstrap failed"
    tar -C "$rootfs" --exclude=./.ai-agents-ci-stamp -c . | $DOCKER import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'ENV LANG=C.UTF-8' \
        -c 'LABEL ai-agents-ci.stand-in="debian-bookworm-debootstrap-python3.11"' -c 'CMD ["python3"]' \
        - "$BASE" >/dev/null || skip "docker import of the stand-in failed"
fi

# --- build --------------------------------------------------------------------------------
IMAGE=ai-agents:latest
t=$SECONDS
if $DOCKER build --network host -t "$IMAGE" . >"$WORK/build.log" 2>&1; then
    ok "docker build -t $IMAGE . ($((SECONDS - t)) s)"
else
    fail "docker build failed; the end of its log:"
    tail -20 "$WORK/build.log"
    exit 1
fi
if "$VENV/bin/python" .ci/compose_run_args.py --same-healthcheck docker-compose.yml \
        "$($DOCKER image inspect -f '{{json .Config.Healthcheck}}' "$IMAGE")"; then
    ok "compose healthcheck = the image's HEALTHCHECK"
else
    fail "docker-compose.yml's healthcheck differs from the Dockerfile's HEALTHCHECK"
fi

# --- the fake LLM server and the container's config ----------------------------------------
"$VENV/bin/python" -m tests.fakes.llm_server --port 0 >"$WORK/llm.url" 2>"$WORK/llm.log" &
FAKE_PID=$!
for _ in $(seq 1 50); do [ -s "$WORK/llm.url" ] && break; sleep 0.1; done
LLM_URL=$(head -1 "$WORK/llm.url")
[ -n "$LLM_URL" ] || { fail "the fake LLM server did not start"; cat "$WORK/llm.log"; exit 1; }
mkdir -p "$WORK/config"
cat >"$WORK/config/config.yaml" <<EOF
company: {name: CI Co, mission: Check the container., strategy: Small steps., goals: [A tested string helper]}
llm: {provider: openai, model: gpt-4o-mini, base_url: "$LLM_URL", timeout: 10, max_retries: 1}
orchestrator: {check_interval: 2, heartbeat_interval: 2, generate_when_idle: false, watchdog_timeout: 20}
memory: {database_path: /data/ai_agents.db}
file_system: {workspace_path: /workspace, backup_dir: /data/backups}
logging: {file: /logs/ai-agents.log, level: INFO}
deployment: {enabled: false}
EOF
chmod 0755 "$WORK" "$WORK/config" && chmod 0644 "$WORK/config/config.yaml"
# A fake key, assembled here (no key-shaped literal in the repository).
printf 'OPENAI_API_KEY=%s\nAI_AGENTS_METRICS_ALLOW_REMOTE=1\n' "sk""-ci-fake-key-0000000000" >"$WORK/env"

mapfile -d '' RUN_ARGS < <("$VENV/bin/python" .ci/compose_run_args.py docker-compose.yml "$WORK/config" \
    "$WORK/env" "$VOLUMES") || { fail "cannot translate docker-compose.yml"; exit 1; }
$DOCKER rm -f "$CONTAINER" >/dev/null 2>&1
for v in data workspace logs; do $DOCKER volume rm "${VOLUMES}$v" >/dev/null 2>&1; done

inspect() { $DOCKER inspect -f "$1" "$CONTAINER" 2>/dev/null; }
logs_json() { $DOCKER logs "$CONTAINER" 2>&1 | jq -c -R 'fromjson? // empty'; }
count_event() { logs_json | jq -r --arg e "$1" 'select(.event == $e) | .event' | wc -l; }
healthy() { [ "$(inspect '{{.State.Health.Status}}')" = healthy ]; }
is_running() { [ "$(inspect '{{.State.Running}}')" = true ]; }
daemon_pid() {  # the daemon: the child of tini (PID 1 in the container)
    local init
    init=$(inspect '{{.State.Pid}}')
    [ -n "$init" ] && [ "$init" != 0 ] && pgrep -P "$init" | head -1
}

t=$SECONDS
$DOCKER run -d --name "$CONTAINER" --network host "${RUN_ARGS[@]}" "$IMAGE" >/dev/null \
    || { fail "docker run failed"; exit 1; }

# 1. healthy within the start period (+ one check's timeout)
start_period=$($DOCKER image inspect -f '{{json .Config.Healthcheck.StartPeriod}}' "$IMAGE")
limit=$(( start_period / 1000000000 + 10 ))
if wait_until "$limit" "health status healthy" healthy; then
    ok "healthy after $((SECONDS - t)) s (start period $((start_period / 1000000000)) s)"
else
    fail "not healthy within ${limit}s: $(inspect '{{.State.Status}} {{.State.Health.Status}}')"
    $DOCKER logs "$CONTAINER" 2>&1 | tail -20
fi

# 2. non-root
uid=$(ps -o uid= -p "$(daemon_pid)" | tr -d ' ')
exec_uid=$($DOCKER exec "$CONTAINER" id -u)
if [ "$uid" = 10001 ] && [ "$exec_uid" = 10001 ]; then
    ok "the daemon runs as uid 10001 (host view: $uid, docker exec: $exec_uid)"
else
    fail "the daemon runs as uid '$uid' (docker exec: '$exec_uid'), not 10001"
fi

# 3. a config edit on the host, replacing the file (a new inode, as editors do)
sed 's/check_interval: 2,/check_interval: 3,/' "$WORK/config/config.yaml" >"$WORK/config/config.yaml.new"
chmod 0644 "$WORK/config/config.yaml.new"
mv "$WORK/config/config.yaml.new" "$WORK/config/config.yaml"
reloaded() {
    logs_json | jq -e -s 'map(select(.event == "config_reloaded"
        and (.changed_keys | index("orchestrator.check_interval")))) | length > 0'
}
if wait_until 30 "config_reloaded" reloaded; then
    ok "config edit on the host reloaded live (config_reloaded, orchestrator.check_interval)"
else
    fail "config edit on the host was not reloaded"
fi

# 4. kill -9 of the daemon process -> restart: always
restarts=$(inspect '{{.RestartCount}}')
victim=$(daemon_pid)
restarted() { [ "$(inspect '{{.RestartCount}}')" -gt "$restarts" ] && [ "$(inspect '{{.State.Running}}')" = true ]; }
started_again() { [ "$(count_event daemon_started)" -ge "$1" ]; }
if [ -z "$victim" ] || [ "$victim" -le 1 ]; then
    fail "no daemon process to kill -9 (tini's child)"
elif kill -9 "$victim" && wait_until 30 "a restart after kill -9" restarted && wait_until 30 "daemon_started after it" started_again 2; then
    ok "kill -9 of the daemon (pid $victim) -> restarted by the restart policy (RestartCount $(inspect '{{.RestartCount}}'))"
else
    fail "kill -9 of the daemon was not followed by a restart"
fi
sleep 5  # the restarted daemon recovers its tasks and starts its loop (check_interval 3 s)

# 5. a hung main loop: hold SQLite's write lock so every cycle blocks -> the in-daemon watchdog exits 70
restarts=$(inspect '{{.RestartCount}}')
$DOCKER exec -d "$CONTAINER" python -c "import sqlite3, time
c = sqlite3.connect('/data/ai_agents.db', isolation_level=None, timeout=30)
c.execute('BEGIN EXCLUSIVE')
time.sleep(600)"
t=$SECONDS
watchdog_limit=$((20 + 40))
if wait_until "$watchdog_limit" "a restart by the watchdog" restarted; then
    fired=$(logs_json | jq -c 'select(.event == "watchdog_expired")' | tail -1)
    if [ -n "$fired" ] && echo "$fired" | jq -e '.alert == true and .level == "critical" and .exit_code == 70
            and (.stacks | length) > 1' >/dev/null; then
        ok "hung main loop -> watchdog_expired (critical alert, $(echo "$fired" | jq '.stacks | length') thread stacks), exit 70, restarted after $((SECONDS - t)) s"
    else
        fail "restarted, but no watchdog_expired alert with stacks in the log"
    fi
else
    fail "a hung main loop was not restarted within ${watchdog_limit}s (watchdog_timeout 20 s)"
fi
wait_until 30 "running again" is_running && wait_until 30 "daemon_started" started_again 3

# 6. logs: every line JSON, and the README's commands
if $DOCKER logs "$CONTAINER" 2>&1 | jq -c . >/dev/null; then
    ok "every line of docker logs is JSON ($($DOCKER logs "$CONTAINER" 2>&1 | wc -l) lines)"
else
    fail "docker logs holds lines that are not JSON"
fi
# The README's commands, verbatim but for the container name.
c=$CONTAINER
readme_logs=$($DOCKER logs "$c" 2>&1 | jq -R 'fromjson?' | jq -r .event | grep -c '^daemon_started$')
readme_alerts=$($DOCKER logs "$c" 2>&1 | jq -R 'fromjson? | select(.alert == true)' | jq -r .event | sort -u | tr '\n' ' ')
if [ "$readme_logs" -ge 3 ] && grep -q watchdog_expired <<<"$readme_alerts"; then
    ok "README: \`docker logs -f \"\$c\" 2>&1 | jq -R 'fromjson?'\` ($readme_logs starts) and its alert filter ($readme_alerts)"
else
    fail "README log commands: $readme_logs starts, alerts: '$readme_alerts'"
fi

# 7. docker stop: exit 0 within the grace, and no restart afterwards
wait_until 60 "healthy before the stop" healthy
grace=$(inspect '{{.Config.StopTimeout}}')
t=$SECONDS
$DOCKER stop "$CONTAINER" >/dev/null
took=$((SECONDS - t))
code=$(inspect '{{.State.ExitCode}}')
stopped=$(count_event daemon_stopped)
sleep 3
if [ "$code" = 0 ] && [ "$took" -lt "$grace" ] && [ "$stopped" -ge 1 ] && [ "$(inspect '{{.State.Running}}')" = false ]; then
    ok "docker stop: exit 0 after ${took}s (grace ${grace}s), daemon_stopped logged, not restarted"
else
    fail "docker stop: exit code $code after ${took}s (grace ${grace}s), daemon_stopped $stopped times"
fi

# 8. docker kill is a manual stop: restart: always does not undo it
$DOCKER start "$CONTAINER" >/dev/null
wait_until 30 "running" is_running
$DOCKER kill "$CONTAINER" >/dev/null
sleep 5
if [ "$(inspect '{{.State.Running}}')" = false ]; then
    ok "docker kill: exit $(inspect '{{.State.ExitCode}}'), not restarted (a manual stop)"
else
    fail "docker kill: the container was restarted"
fi

check_done
