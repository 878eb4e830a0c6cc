#!/bin/sh
# Install Debian's chromium and chromium-driver (and a font): the real headless browser the dashboard's
# end-to-end test drives (tests/dashboard/test_dashboard_browser.py, through selenium).
#
# Called by .ci/run. It never fails CI: without apt-get, root or passwordless sudo, or when
# the install fails, it says what happened and exits 0; the browser test then skips and
# names this script as the reason.
set -u

say() { echo "install_browser: $*"; }

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    say "already installed: $(chromium --version 2>/dev/null | head -n 1); chromedriver at $(command -v chromedriver)"
    exit 0
fi

. "$(dirname "$0")/apt_install.sh"
# fonts-dejavu-core: without any font the screenshots would show empty boxes.
if apt_install install_browser chromium chromium-driver fonts-dejavu-core; then
    say "installed: $(chromium --version 2>/dev/null | head -n 1)"
else
    say "the browser test (tests/dashboard/test_dashboard_browser.py) will be skipped"
fi
exit 0
