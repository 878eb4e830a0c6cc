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

. "$(dirname "$0")/apt_install.sh"
# The package may try to start the system service (policy-rc.d usually denies it in
# containers); the tests start their own sshd on 127.0.0.1 and need nothing else.
if apt_install install_sshd openssh-server openssh-client; then
    say "installed: $(/usr/sbin/sshd -V 2>&1 | head -n 1 || true)"
else
    say "the real-sshd deployment tests will be skipped"
fi
exit 0
