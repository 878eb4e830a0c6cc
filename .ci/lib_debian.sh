# Sourced by docker_check.sh and systemd_check.sh: a cached Debian 12 (bookworm) root
# file system made with debootstrap from the Debian mirror apt on this machine uses.
#
#   CI_CACHE                 cache directory (default /var/cache/ai-agents-ci)
#   debian_mirror            prints the mirror URL read from apt's sources
#   debian_rootfs NAME PKGS  prints the path of $CI_CACHE/rootfs-NAME, a minbase
#                            bookworm with the comma-separated PKGS, made once
#
# The rootfs trusts this machine's own extra CA certificates (from
# /usr/local/share/ca-certificates) and gets its /etc/pip.conf when it has one, so
# pip inside reaches the package index exactly as pip on this machine does.

CI_CACHE=${CI_CACHE:-/var/cache/ai-agents-ci}

debian_mirror() {
    local line url=""
    # deb822 (.sources) first, then one-line format; skip the security archive.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        url=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f")
        [ -n "$url" ] && break
    done
    if [ -z "$url" ]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            line=$(grep -E '^deb[[:space:]]' "$f" | grep -v security | head -1 || true)
            url=$(echo "$line" | sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/')
            [ -n "$url" ] && break
        done
    fi
    echo "$url"
}

debian_rootfs() {
    local name=$1 packages=$2
    local dir="$CI_CACHE/rootfs-$name" stamp
    stamp="bookworm minbase $packages"
    if [ -f "$dir/.ai-agents-ci-stamp" ] && [ "$(cat "$dir/.ai-agents-ci-stamp")" = "$stamp" ]; then
        echo "$dir"
        return 0
    fi
    command -v debootstrap >/dev/null || return 1
    local mirror tmp
    mirror=$(debian_mirror)
    if [ -z "$mirror" ]; then
        echo "ci: no Debian mirror in apt's sources: cannot debootstrap" >&2
        return 1
    fi
    tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$CI_CACHE/debs"
    echo "ci: debootstrap bookworm ($packages) from $mirror into $dir (cached for later runs)" >&2
    if ! timeout 600 debootstrap --variant=minbase --include="$packages" --cache-dir="$CI_CACHE/debs" \
            bookworm "$tmp" "$mirror" >"$CI_CACHE/debootstrap-$name.log" 2>&1; then
        echo "ci: debootstrap failed; the end of $CI_CACHE/debootstrap-$name.log:" >&2
        tail -5 "$CI_CACHE/debootstrap-$name.log" >&2
        rm -rf "$tmp"
        return 1
    fi
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1 && [ -d "$tmp/usr/sbin" ]; then
        mkdir -p "$tmp/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$tmp/usr/local/share/ca-certificates/"
        chroot "$tmp" update-ca-certificates >/dev/null 2>&1 || true
        echo "ci: the rootfs trusts this machine's CA certificates ($(ls /usr/local/share/ca-certificates/ | tr "\n" " "))" >&2
    fi
    [ -f /etc/pip.conf ] && cp /etc/pip.conf "$tmp/etc/pip.conf"
    rm -rf "$tmp/var/cache/apt/archives/"*.deb
    echo "$stamp" >"$tmp/.ai-agents-ci-stamp"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "$dir"
}
