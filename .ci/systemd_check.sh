#!/usr/bin/env bash
# Run ai-agents.service under a REAL systemd: Debian 12's systemd 252 booted as PID 1 of an
# nspawn container, installed with the README's steps verbatim.
#     bash .ci/systemd_check.sh [VENV]         (VENV defaults to .venv: the fake LLM server)
# Exit 0: every check passed; 1: a check failed; 3: this machine cannot run it (the
# reason is printed). Called by .ci/run after the tests.
#
# The container: a bookworm rootfs made once with debootstrap (cached in $CI_CACHE, see
# lib_debian.sh), used through an overlay so every run starts clean, booted with
# `systemd-nspawn --register=no --keep-unit -b` on the host network (the daemon talks to
# the fake LLM server on 127.0.0.1). The committed HEAD of this repository is what the
# README's `git clone` installs. pip's download cache is kept in $CI_CACHE.
# Checks: the README's install steps; Type=notify READY and STATUS=; WatchdogSec: a
# SIGSTOPped daemon is aborted with its stacks and restarted; kill -9 -> restarted;
# many `systemctl restart` in a row never hit a start limit; the README's journalctl
# commands for logs and alerts; a sandboxed test run (the demo, bubblewrap) under the
# unit's own hardening; `systemctl stop` exits 0 within TimeoutStopSec.
set -uo pipefail
cd "$(dirname "$0")/.."
. .ci/lib_check.sh systemd_check "${1:-.venv}" "systemd-nspawn needs root"   # REPO VENV T0; say ok fail skip check_done
missing=""
command -v systemd-nspawn >/dev/null || missing="$missing systemd-container"
command -v debootstrap >/dev/null || missing="$missing debootstrap"
command -v nsenter >/dev/null || missing="$missing util-linux"
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt_install systemd_check $missing >/dev/null || skip "could not install$missing"
fi
unshare --pid --mount --fork true 2>/dev/null || skip "cannot create namespaces here (unshare --pid --mount failed)"

rootfs=$(debian_rootfs systemd \
    "systemd,systemd-sysv,dbus,sudo,git,bubblewrap,python3,python3-venv,ca-certificates,procps,jq") \
    || skip "cannot make the Debian 12 rootfs (debootstrap failed)"

WORK=$(mktemp -d /tmp/ai-agents-systemd-check.XXXXXX)
MACHINE=$WORK/root
NSPAWN_PID=""
FAKE_PID=""
OVERLAY=""
cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null   # nspawn asks the container's systemd to power off
        for _ in $(seq 1 40); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null
        wait "$NSPAWN_PID" 2>/dev/null
    fi
    [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
    [ -n "$OVERLAY" ] && umount "$MACHINE" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 1" TERM INT

mkdir -p "$MACHINE" "$WORK/upper" "$WORK/ovl" "$CI_CACHE/pip-cache"
if mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$WORK/upper,workdir=$WORK/ovl" "$MACHINE" 2>/dev/null; then
    OVERLAY=1
else
    cp -a "$rootfs/." "$MACHINE/" || skip "cannot copy the rootfs"
fi

# --- the fake LLM server, the config the README's steps install ---------------------------
"$VENV/bin/python" -m tests.fakes.llm_server --port 0 >"$WORK/llm.url" 2>"$WORK/llm.log" &
FAKE_PID=$!
for _ in $(seq 1 50); do [ -s "$WORK/llm.url" ] && break; sleep 0.1; done
LLM_URL=$(head -1 "$WORK/llm.url")
[ -n "$LLM_URL" ] || { fail "the fake LLM server did not start"; exit 1; }
mkdir -p "$MACHINE/root/ci"
# The README's absolute paths under the State/Logs directories; a fake key assembled here.
cat >"$MACHINE/root/ci/config.yaml" <<EOF
company: {name: CI Co, mission: Check the unit., strategy: Small steps., goals: [A tested string helper]}
llm: {provider: openai, model: gpt-4o-mini, base_url: "$LLM_URL", api_key: "sk""-ci-fake-key-0000000000",
      timeout: 10, max_retries: 1}
orchestrator: {check_interval: 2, heartbeat_interval: 2, generate_when_idle: false}
memory: {database_path: /var/lib/ai-agents/ai_agents.db}
file_system: {workspace_path: /var/lib/ai-agents/workspace, backup_dir: /var/lib/ai-agents/backups}
logging: {file: /var/log/ai-agents/ai-agents.log}
deployment: {enabled: false}
EOF
sed -i 's/"sk""-ci/"sk-ci/' "$MACHINE/root/ci/config.yaml"
# The README's install block, verbatim but for the clone source.
awk '/^### Under systemd/ {on = 1} on && /^```sh/ {code = 1; next} code && /^```/ {exit} code {print}' README.md \
    | sed "s|<repo>|/src|" >"$MACHINE/root/ci/install.sh"
[ -s "$MACHINE/root/ci/install.sh" ] || { fail "no install block under '### Under systemd' in README.md"; exit 1; }

# --- boot ---------------------------------------------------------------------------------
# Own session, no terminal: the container's console must never be a terminal of ours (a
# getty there hangs it up, which sends SIGHUP to everything else on that terminal).
ln -sf /dev/null "$MACHINE/etc/systemd/system/console-getty.service"
setsid systemd-nspawn --register=no --keep-unit --quiet --console=read-only -D "$MACHINE" \
    --bind-ro="$REPO:/src" --bind="$CI_CACHE/pip-cache:/root/.cache/pip" -b \
    </dev/null >"$WORK/console.log" 2>&1 &
NSPAWN_PID=$!
INIT=""
for _ in $(seq 1 150); do
    # The container's PID 1 is a child of nspawn (its subreaper) named systemd.
    for p in $(pgrep -P "$NSPAWN_PID"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && INIT=$p && break
    done
    [ -n "$INIT" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.2
done
[ -n "$INIT" ] || { tail -5 "$WORK/console.log"; skip "systemd-nspawn did not boot a container here"; }
in_ct() { nsenter -t "$INIT" -a -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
state=""
for _ in $(seq 1 60); do  # the manager's socket appears a moment after exec
    state=$(in_ct timeout 90 systemctl is-system-running --wait 2>/dev/null)
    [ -n "$state" ] && break
    sleep 0.5
done
say "booted $(in_ct systemctl --version | head -1) in an nspawn container (system state: $state)"

show() { in_ct systemctl show -p "$1" --value ai-agents; }
main_pid() {  # the daemon's PID, waiting while it (re)starts; never 0 (`kill 0` = our own group)
    local pid
    for _ in $(seq 1 60); do
        pid=$(show MainPID)
        [ -n "$pid" ] && [ "$pid" -gt 1 ] && [ "$(show ActiveState)" = active ] && { echo "$pid"; return 0; }
        sleep 0.5
    done
    return 1
}
watchdog_journaled() {  # systemd's watchdog line and the daemon's faulthandler stacks, both journaled
    # Here-strings, not `echo "$journal" | grep -q`: grep -q exits at its first match, echo
    # then dies of SIGPIPE on a journal larger than a pipe's buffer, and pipefail fails it.
    local journal
    journal=$(in_ct journalctl -u ai-agents -o cat --no-pager) || return 1
    grep -q "Watchdog timeout" <<<"$journal" && grep -q "^Thread 0x\|^Current thread 0x" <<<"$journal"
}
running_again() {  # running_again OLD_RESTARTS OLD_PID
    [ "$(show NRestarts)" -gt "$1" ] && [ "$(show ActiveState)" = active ] && [ "$(show MainPID)" != "$2" ] \
        && [ "$(show MainPID)" != 0 ]
}

# 1. the README's install steps, verbatim
t=$SECONDS
if in_ct bash -c 'cd /root/ci && set -ex && git config --global --add safe.directory /src && . ./install.sh' \
        >"$WORK/install.log" 2>&1; then
    ok "README install steps ($(grep -c . "$MACHINE/root/ci/install.sh") lines) ran in $((SECONDS - t)) s"
else
    fail "README install steps failed; the end of the log:"
    tail -15 "$WORK/install.log"
    exit 1
fi

# 2. Type=notify: active only after READY=1; STATUS= shown
status_text=$(show StatusText)
if [ "$(show ActiveState)" = active ] && [ "$(show SubState)" = running ] && [ "${status_text#queues:}" != "$status_text" ]; then
    ok "READY=1 (active/running after enable --now), STATUS=\"$status_text\""
else
    fail "not active/running with a STATUS= line: $(show ActiveState)/$(show SubState) status='$status_text'"
    in_ct journalctl -u ai-agents --no-pager | tail -20
fi

# 3. the README's journalctl commands: logs, and alerts (a rejected config edit raises one)
# Edited as an admin would: a new file (new inode) with the original's owner and mode (0640
# root:ai-agents), moved over the old one.
edit_config() {  # edit_config SOURCE_FILE
    cp -p "$1" "$MACHINE/etc/ai-agents/config.yaml.new"
    chown --reference="$WORK/config.good" "$MACHINE/etc/ai-agents/config.yaml.new"
    chmod --reference="$WORK/config.good" "$MACHINE/etc/ai-agents/config.yaml.new"
    mv "$MACHINE/etc/ai-agents/config.yaml.new" "$MACHINE/etc/ai-agents/config.yaml"
}
cp -p "$MACHINE/etc/ai-agents/config.yaml" "$WORK/config.good"
sed 's/check_interval: 2,/check_interval: -1,/' "$WORK/config.good" >"$WORK/config.bad"
edit_config "$WORK/config.bad"
alert_seen() {
    in_ct bash -c "journalctl -t ai-agents -o cat | jq -R -c 'fromjson? | select(.alert == true)'" \
        | grep config_rejected >/dev/null   # not -q: an early exit is SIGPIPE to the writer, a failure under pipefail
}
if wait_until 30 "a config_rejected alert" alert_seen; then
    starts=$(in_ct bash -c "journalctl -t ai-agents -o cat | jq -R -c 'fromjson? | select(.event == \"daemon_started\")'" | wc -l)
    ok "README logs: \`journalctl -t ai-agents -o cat | jq -R 'fromjson? | …'\` ($starts daemon_started) and alerts (config_rejected)"
else
    fail "the README's journalctl alert filter showed no config_rejected alert"
fi
edit_config "$WORK/config.good"
if in_ct bash -c "journalctl -u ai-agents -o cat | jq . >/dev/null 2>&1"; then
    say "note: plain \`journalctl -u ai-agents -o cat | jq\` worked this time"
else
    ok "plain \`journalctl -u ai-agents -o cat | jq\` fails on systemd's own lines, as the README warns"
fi

# 4. the watchdog: a frozen daemon sends no WATCHDOG=1 -> SIGABRT with stacks -> Restart=
restarts=$(show NRestarts)
wd=$(show WatchdogUSec)
t=$SECONDS
# Up to WatchdogSec, then SIGABRT (+SIGCONT) and RestartSec.
if ! pid=$(main_pid); then
    fail "no running daemon to freeze: $(show ActiveState)/$(show SubState)"
elif in_ct kill -STOP "$pid" && wait_until 120 "the watchdog restart" running_again "$restarts" "$pid"; then
    # journald reads the dying process's stderr stream on its own time: the stacks can land
    # after systemd has already started the next daemon, so the journal is polled.
    if wait_until 30 "the watchdog message and the stacks in the journal" watchdog_journaled; then
        ok "watchdog ($wd): SIGSTOPped daemon aborted with its thread stacks in the journal, restarted after $((SECONDS - t)) s"
    else
        journal=$(in_ct journalctl -u ai-agents -o cat --no-pager)
        grep -q "Watchdog timeout" <<<"$journal" || say "missing: systemd's 'Watchdog timeout' line"
        grep -q "^Thread 0x\|^Current thread 0x" <<<"$journal" || say "missing: faulthandler's thread stacks"
        say "the unit's last journal lines:"
        echo "$journal" | grep -v '^{' | tail -15
        fail "restarted after SIGSTOP, but no 'Watchdog timeout' with thread stacks in the journal"
    fi
else
    fail "a SIGSTOPped daemon was not restarted by the watchdog ($wd)"
fi

# 5. kill -9 -> Restart=always
restarts=$(show NRestarts)
t=$SECONDS
if ! pid=$(main_pid); then
    fail "no running daemon to kill: $(show ActiveState)/$(show SubState)"
elif in_ct kill -9 "$pid" && wait_until 40 "the restart after kill -9" running_again "$restarts" "$pid"; then
    ok "kill -9 -> restarted after $((SECONDS - t)) s (RestartSec=$(in_ct systemctl show -p RestartUSec --value ai-agents))"
else
    fail "kill -9 was not followed by a restart"
fi

# 6. manual restarts (config edits) never strand the daemon in start-limit-hit
bad=0
for i in 1 2 3 4 5 6 7 8; do
    in_ct systemctl restart ai-agents || { bad=$i; break; }
done
if [ "$bad" = 0 ] && [ "$(show ActiveState)" = active ] && [ "$(show Result)" = success ]; then
    ok "8 x systemctl restart in a row (after the watchdog and kill -9 restarts): still active, no start-limit-hit"
else
    fail "systemctl restart #$bad failed: $(show ActiveState) result=$(show Result)"
fi

# 7. a sandboxed test run under the unit's own hardening: the demo (QA's failing tests, the
#    Developer's fix, real pytest runs) as a oneshot unit copied from ai-agents.service
sed -e 's/^Type=notify/Type=oneshot/' -e '/^WatchdogSec=/d' -e '/^Restart/d' -e '/^NotifyAccess=/d' \
    -e 's|^ExecStart=.*|ExecStart=/opt/ai-agents/.venv/bin/python /opt/ai-agents/main.py demo --workspace /var/lib/ai-agents/demo-workspace|' \
    "$MACHINE/etc/systemd/system/ai-agents.service" >"$MACHINE/etc/systemd/system/ai-agents-sandbox-check.service"
if [ -n "${SANDBOX_CHECK_EXTRA:-}" ]; then  # e.g. "ProtectKernelTunables=yes ProtectKernelLogs=yes"
    for line in $SANDBOX_CHECK_EXTRA; do
        sed -i "/^\[Install\]/i $line" "$MACHINE/etc/systemd/system/ai-agents-sandbox-check.service"
    done
    say "sandbox check with extra unit lines: $SANDBOX_CHECK_EXTRA"
fi
in_ct systemctl daemon-reload
t=$SECONDS
if in_ct timeout 180 systemctl start ai-agents-sandbox-check; then
    runs=$(in_ct bash -c "jq -c 'select(.event == \"tests_run\")' /var/lib/ai-agents/.demo-workspace-demo/data/logs/demo.log")
    if [ -n "$runs" ] && ! grep -qv '"sandbox": *"bwrap"' <<<"$runs" && echo "$runs" | tail -1 | grep -q '"outcome": *"passed"'; then
        ok "sandboxed test runs under the unit's hardening: $(echo "$runs" | wc -l) pytest runs, all in bubblewrap, the last passed ($((SECONDS - t)) s)"
    else
        fail "the demo ran, but its test runs were not all in bubblewrap or none passed: $runs"
    fi
else
    fail "the demo (sandboxed test runs) failed under the unit's hardening"
    in_ct journalctl -u ai-agents-sandbox-check -o cat --no-pager | tail -15
fi

# 8. systemctl stop: exit 0 within TimeoutStopSec
t=$SECONDS
if in_ct systemctl stop ai-agents; then
    took=$((SECONDS - t))
    code=$(show ExecMainStatus)
    if [ "$code" = 0 ] && [ "$(show Result)" = success ] && [ "$took" -lt 45 ]; then
        ok "systemctl stop: exit 0 after ${took}s (TimeoutStopSec 45 s)"
    else
        fail "systemctl stop: main process exit $code, result $(show Result), ${took}s"
    fi
else
    fail "systemctl stop failed"
fi

check_done
