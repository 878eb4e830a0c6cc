# Sourced by docker_check.sh and systemd_check.sh right after they cd to the repository:
# their common preamble and ending.
#
#   . .ci/lib_check.sh NAME VENV ROOT_REASON
#       NAME prefixes every line; VENV is the virtualenv (default .venv); without root the
#       check is skipped (exit 3) with ROOT_REASON. Sets REPO, VENV, T0 and failures; defines
#       say, ok, fail, skip, wait_until and check_done; sources apt_install.sh and lib_debian.sh.
#   wait_until SECONDS DESCRIPTION COMMAND...   polls COMMAND every 0.5 s; 1 (said) on timeout
#   check_done        prints the summary; exit 0 when every check passed, else 1.

CHECK_NAME=$1
REPO=$PWD
VENV=${2:-.venv}
T0=$SECONDS

say() { echo "$CHECK_NAME: $*"; }
failures=0
ok() { say "ok: $*"; }
fail() { say "FAIL: $*"; failures=$((failures + 1)); }
skip() { say "SKIPPED (exit 3): $*"; exit 3; }
wait_until() {
    local limit=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    while [ $SECONDS -lt $deadline ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    say "timed out after ${limit}s waiting for $what"
    return 1
}
check_done() {
    say "$failures failed check(s), $((SECONDS - T0)) s in all"
    [ "$failures" = 0 ] || exit 1
    exit 0
}

[ "$(id -u)" = 0 ] || skip "not root: $3"
[ -x "$VENV/bin/python" ] || skip "no virtualenv at $VENV (pass its path)"
. .ci/apt_install.sh
. .ci/lib_debian.sh
