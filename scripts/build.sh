#!/usr/bin/env bash
# Builds the native library (Zig), embeds it, and compiles dist/switchyard with `bun build --compile`.
# The compiled binary must not read .env or bunfig.toml from the directory it runs in: both autoload
# flags are off.
set -euo pipefail
cd "$(dirname "$0")/.."
zig="$PWD/tools/zig/ziglang/zig"
bun="$PWD/node_modules/.bin/bun"

# Said before the step because the first one (Zig builds its standard library into its cache) is long.
first=""; [ -f native/zig-out/lib/libswitchyard.so ] || first=" (the first build takes a few minutes)"
echo "build: compiling the native library with Zig$first..."
(cd native && "$zig" build -Doptimize=ReleaseFast)
cp native/zig-out/lib/libswitchyard.so src/native/libswitchyard.so

if [ -f bench/loadgen/build.zig ]; then
  (cd bench/loadgen && "$zig" build -Doptimize=ReleaseFast)
fi

version=$(node -p 'require("./package.json").version')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
"$bun" build src/main.ts --compile --minify-syntax \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --define "SWITCHYARD_VERSION=\"$version\"" --define "SWITCHYARD_COMMIT=\"$commit\"" \
  --outfile dist/switchyard >/dev/null
echo "build: dist/switchyard ($(du -h dist/switchyard | cut -f1), switchyard $version $commit)"
