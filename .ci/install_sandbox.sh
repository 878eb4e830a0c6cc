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

. "$(dirname "$0")/apt_install.sh"
if apt_install install_sandbox bubblewrap; then
    say "installed"
    probe
else
    say "the bwrap-only tests will be skipped"
fi
exit 0
