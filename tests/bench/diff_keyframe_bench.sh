#!/usr/bin/env bash
# `reel diff` of two long recordings that part ways late, with and without
# keyframes, plus what keyframes cost a recording (time and journal size).
# The compute guest runs for ITERATIONS (200: about 1.1e9 instructions); B
# gets one console byte typed DELAY seconds into its recording, A none, so
# the two runs are equal up to that byte and differ after it.
# Usage: tests/bench/diff_keyframe_bench.sh [BUILD_DIR] [ITERATIONS] [DELAY_S]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
iterations=${2:-200}
delay=${3:-10}
reel="$build/reel"
elf="$build/guests/compute.elf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(-seed 1 -rtc base=2020-01-01T00:00:00 -kernel "$elf" -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04
  -append "iterations=$iterations")

now() { date +%s.%N; }
# timed NAME CMD...: runs CMD, prints nothing, leaves seconds in $tmp/NAME.s
timed() {
  local name=$1 t0 t1
  shift
  t0=$(now)
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || true
  t1=$(now)
  echo "$t1 - $t0" | bc -l >"$tmp/$name.s"
}
secs() { printf '%.2f' "$(cat "$tmp/$1.s")"; }
size() { stat -c %s "$1"; }

timed rec_nokf "$reel" record --keyframe-interval=0 -o "$tmp/a0.reel" "${common[@]}"
timed rec_kf "$reel" record -o "$tmp/a.reel" "${common[@]}"
# The same run, one byte typed late (the guest never reads it, but the
# UART's state holds it from then on).
timed rec_b bash -c "(sleep $delay; printf x) | '$reel' record -o '$tmp/b.reel' ${common[*]@Q}"
timed replay "$reel" replay "$tmp/a.reel"
timed diff_kf "$reel" diff "$tmp/a.reel" "$tmp/b.reel"
timed diff_nokf "$reel" diff --no-keyframes "$tmp/a.reel" "$tmp/b.reel"

icount=$(grep -o 'icount=[0-9]*' "$tmp/rec_kf.err" | tail -1 | cut -d= -f2)
keyframes=$("$reel" info "$tmp/a.reel" | grep '^keyframes:')
printf 'guest instructions:        %s\n' "$icount"
printf 'record, no keyframes:      %s s  journal %s bytes\n' "$(secs rec_nokf)" "$(size "$tmp/a0.reel")"
printf 'record, keyframes:         %s s  journal %s bytes\n' "$(secs rec_kf)" "$(size "$tmp/a.reel")"
printf '%s\n' "$keyframes"
printf 'replay of A:               %s s\n' "$(secs replay)"
printf 'diff with keyframes:       %s s\n' "$(secs diff_kf)"
grep -E '^(replayed|first differing checkpoint|located|  A: console|  B: console)' "$tmp/diff_kf.out" || true
printf 'diff --no-keyframes:       %s s\n' "$(secs diff_nokf)"
grep -E '^(replayed|located)' "$tmp/diff_nokf.out" || true
if ! grep -q 'differ' "$tmp/diff_kf.out"; then
  echo "diff found no difference (was the byte typed before the run ended?):" >&2
  cat "$tmp/diff_kf.out" "$tmp/diff_kf.err" >&2
  exit 1
fi
