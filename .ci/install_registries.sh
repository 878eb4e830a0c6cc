#!/bin/sh
# Fill the caches the project-dependency and jest tests use, from the public registries:
#  - jest, ts-jest and typescript (npm registry) into $AI_AGENTS_JEST_DIR (default ~/.cache/ai-agents-ci/jest), --ignore-scripts;
#  - uv (a wheel from the Python index) into $HOME/.cache/ai-agents-ci/uv: the project env's uv installer test;
#  - attrs (a small pure-Python wheel) is fetched by the tests themselves, through the daemon's
#    own installer (that is what they test); here we only say whether the package index answers.
# Called by .ci/run. It never fails CI: without node/npm or a registry the tests that need them SKIP
# and say why.
set -u
say() { echo "install_registries: $*"; }
dir="${AI_AGENTS_JEST_DIR:-$HOME/.cache/ai-agents-ci/jest}"
if [ -f "$dir/node_modules/jest/bin/jest.js" ] && [ -d "$dir/node_modules/ts-jest" ]; then
    say "jest already in $dir"
elif command -v npm >/dev/null 2>&1; then
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name": "ai-agents-jest-cache", "private": true}' > "$dir/package.json"
    if (cd "$dir" && timeout 300 npm install --no-audit --no-fund --ignore-scripts jest@29 ts-jest@29 typescript@5 >/dev/null 2>&1); then
        say "installed jest into $dir"
    else
        say "could not install jest from the npm registry; the jest tests will be skipped"
    fi
else
    say "npm is not on PATH; the jest tests will be skipped"
fi
tmp=$(mktemp -d)
if timeout 120 python3 -m pip --isolated download --quiet --no-deps --only-binary :all: -d "$tmp" attrs==23.2.0 \
        >/dev/null 2>&1; then
    say "the Python package index answers: the project-dependency tests will install attrs from it"
else
    say "the Python package index is unreachable: the project-dependency tests will be skipped"
fi
rm -rf "$tmp"
uvdir="$HOME/.cache/ai-agents-ci/uv"
if [ -x "$uvdir/bin/uv" ]; then
    say "uv already in $uvdir"
elif timeout 300 python3 -m pip --isolated install --quiet --only-binary :all: --target "$uvdir" uv >/dev/null 2>&1; then
    say "installed uv into $uvdir"
else
    say "could not install uv from the Python package index; the uv installer test will be skipped"
fi
exit 0
