#!/usr/bin/env bash
# Installs what the build needs into the project, never system-wide, and only what is missing:
# Bun and the tests' npm drivers (devDependencies, exact versions) and Zig (PyPI package `ziglang`, exact version) under tools/.
# Idempotent: a second run finds everything in place and says so (--quiet: says nothing then).
# The long steps say what they do even with --quiet: a fresh machine is otherwise silent for minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIG_VERSION="0.17.1"   # keep in step with native/build.zig and bench/loadgen/build.zig
quiet=0; [ "${1:-}" = "--quiet" ] && quiet=1
did=()

bun_wanted=$(node -p 'require("./package.json").devDependencies.bun')
if [ ! -x node_modules/.bin/bun ] || [ "$(node_modules/.bin/bun --version 2>/dev/null)" != "$bun_wanted" ] \
   || [ ! -d node_modules/typescript ] || [ ! -d node_modules/@types/bun ] || [ ! -d node_modules/mysql2 ]; then
  echo "bootstrap: installing bun $bun_wanted, typescript and the test drivers (mysql2) from npm..."
  npm install --no-audit --no-fund --loglevel=error >/dev/null
  did+=("bun $(node_modules/.bin/bun --version)")
fi

zig=tools/zig/ziglang/zig
if [ ! -x "$zig" ] || [ "$("$zig" version 2>/dev/null)" != "$ZIG_VERSION" ]; then
  rm -rf tools/zig
  echo "bootstrap: installing zig $ZIG_VERSION from PyPI (package ziglang) into tools/zig..."
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location \
    --target tools/zig "ziglang==$ZIG_VERSION" >&2
  did+=("zig $("$zig" version)")
fi

if [ ${#did[@]} -eq 0 ]; then
  [ $quiet -eq 1 ] || echo "bootstrap: nothing to do (bun $bun_wanted, zig $ZIG_VERSION already installed)"
else
  echo "bootstrap: installed ${did[*]}"
fi
