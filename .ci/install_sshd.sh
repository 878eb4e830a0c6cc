#!/bin/sh
# Install openssh-server (and the ssh client) for the real-sshd deployment tests.
#
# Called by .ci/run. It never fails CI: without apt-get, root or sudo, or when the
# install fails, it says what happened and exits 0, and tests/deployment skips the
# real-sshd case with "sshd is not installed" as the reason.
set -u

say() { echo "install_sshd: $*"; }

if [ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1; then
    if command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; then
        say "sshd, ssh and ssh-keygen already installed"
        exit 0
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get is not available: not installing; the real-sshd deployment tests will be skipped"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        say "not root and no passwordless sudo: not installing; the real-sshd deployment tests will be skipped"
        exit 0
    fi
fi

# Bound the whole install so a stuck mirror cannot hang CI.
TIMEOUT=""
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout 600"
fi

export DEBIAN_FRONTEND=noninteractive
say "installing openssh-server with apt-get"
if $SUDO $TIMEOUT apt-get update -qq \
    && $SUDO $TIMEOUT apt-get install -y -qq --no-install-recommends openssh-server openssh-client; then
    # The package may try to start the system service (policy-rc.d usually denies it in
    # containers); the tests start their own sshd on 127.0.0.1 and need nothing else.
    say "installed: $(/usr/sbin/sshd -V 2>&1 | head -n 1 || true)"
else
    say "apt-get failed (exit $?): the real-sshd deployment tests will be skipped"
fi
exit 0
