#!/usr/bin/env bash
# build.sh DIR [cmake args...]: configure (once) and build reel in DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
shift
jobs=${REEL_JOBS:-$(nproc)}
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null
fi
ninja -C "$dir" -j "$jobs"
