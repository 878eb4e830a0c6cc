# Sourced by the .ci scripts: `apt_install WHO PACKAGE...` installs Debian packages when it
# can (apt-get present, root or passwordless sudo), bounded in time, and says what happened.
# Returns 0 when the packages were installed, 1 otherwise; it never exits the caller.
# `apt-get update` runs at most once per CI run (a marker in /tmp).

apt_install() {
    who=$1
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: apt-get is not available: not installing $*"
        return 1
    fi
    sudo_cmd=""
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo_cmd="sudo -n"
        else
            echo "$who: not root and no passwordless sudo: not installing $*"
            return 1
        fi
    fi
    # Bound each step so a stuck mirror cannot hang CI.
    limit=""
    if command -v timeout >/dev/null 2>&1; then
        limit="timeout 600"
    fi
    marker=/tmp/.ai-agents-ci-apt-updated
    if [ ! -e "$marker" ]; then
        $sudo_cmd $limit apt-get update -qq || { echo "$who: apt-get update failed"; return 1; }
        touch "$marker"
    fi
    echo "$who: installing $* with apt-get"
    if $sudo_cmd env DEBIAN_FRONTEND=noninteractive $limit apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null; then
        return 0
    fi
    echo "$who: apt-get install $* failed"
    return 1
}
