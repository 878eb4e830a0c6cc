#!/bin/sh
# Install bubblewrap (bwrap), the sandbox the test runner puts generated tests in.
#
# Called by .ci/run. It never fails CI: without apt-get, root or passwordless sudo,
# or when the install fails, it says what happened and exits 0. The tests then run
# without bubblewrap (testing.sandbox "auto" falls back to rlimits, the timeout and a
# pids cgroup) and the bwrap-only tests in tests/workspace skip, naming this script.
set -u

say() { echo "install_sandbox: $*"; }

# Can bwrap create its namespaces here? (Inside a default Docker container it cannot.)
probe() {
    if ! command -v bwrap >/dev/null 2>&1; then
        say "bwrap is not on PATH ($PATH); the bwrap-only tests will be skipped"
        return
    fi
    if bwrap --die-with-parent --unshare-user-try --unshare-pid --unshare-net --cap-drop ALL \
        --ro-bind / / --dev /dev --proc /proc -- true >/dev/null 2>&1; then
        say "bwrap works here: $(bwrap --version 2>&1)"
    else
        say "bwrap is installed but cannot create a sandbox here (no user namespaces?);" \
            "tests run without it and the bwrap-only tests skip"
    fi
}

if command -v bwrap >/dev/null 2>&1; then
    say "bubblewrap already installed"
    probe
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get is not available: not installing bubblewrap; the bwrap-only tests will be skipped"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        say "not root and no passwordless sudo: not installing bubblewrap; the bwrap-only tests will be skipped"
        exit 0
    fi
fi

# Bound the whole install so a stuck mirror cannot hang CI.
TIMEOUT=""
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout 600"
fi

export DEBIAN_FRONTEND=noninteractive
say "installing bubblewrap with apt-get"
if $SUDO $TIMEOUT apt-get update -qq \
    && $SUDO $TIMEOUT apt-get install -y -qq --no-install-recommends bubblewrap; then
    say "installed"
    probe
else
    say "apt-get failed (exit $?): the bwrap-only tests will be skipped"
fi
exit 0
