#!/bin/sh
# Install Debian's PostgreSQL server for the storage and multi-node tests.
#
# Called by .ci/run. It never fails CI: without apt-get, root or passwordless sudo, or
# when the install fails, it says what happened and exits 0, and the PostgreSQL-
# parametrised tests (tests/storage, tests/cluster) skip with "PostgreSQL server
# binaries not found" as the reason. The tests start their own throwaway server
# (initdb into a temporary directory, pg_ctl on a local socket and port): the
# system service the package may set up is not used.
set -u

say() { echo "install_postgres: $*"; }

found() {
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if dir=$(found); then
    say "PostgreSQL server binaries already installed in $dir"
    exit 0
fi

. "$(dirname "$0")/apt_install.sh"
# Several jobs may run apt at once on a shared machine: one at a time.
lock=""
if command -v flock >/dev/null 2>&1; then
    lock="flock /tmp/apt.lock"
fi
if $lock sh -c '. "$1"; apt_install install_postgres postgresql' sh "$(dirname "$0")/apt_install.sh" \
        && dir=$(found); then
    say "installed: $("$dir/postgres" --version 2>&1 | head -n 1)"
else
    say "the PostgreSQL tests (tests/storage postgres, tests/cluster) will be skipped"
fi
exit 0
