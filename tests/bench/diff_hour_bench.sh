#!/usr/bin/env bash
# `reel diff` of two recordings covering an hour of virtual time that part
# ways late: with keyframes, with --no-keyframes, and from the journals
# alone (--checkpoints-only: the checkpoint hashes already differ).
#
# The guest is tests/guests/idle.c: the PIT at HZ (1000), WORK (100) rounds
# of a small mix after each tick (about 2300 instructions per tick), halted
# in between, for SECONDS (3600) of ticks. A halted CPU jumps to the next
# timer deadline (-icount sleep=off, so a live console does not pace halts
# against real time), so the hour costs only the ticks' instructions (about
# 8e9). Both recordings have a live console input (a FIFO held open for the
# whole run), as a recording with a terminal or a network attached would;
# B gets one byte typed once its journal is LATE_PERCENT (85) % of A's size
# (the journal grows by its keyframes), in the middle of a keyframe
# interval (see mid_interval), A none, so
# the two runs are equal up to that byte (which the guest never reads: the
# UART holds it) and differ after it. A is recorded twice more for
# comparison: without keyframes, and with stdin at EOF (no live input;
# diffed with itself to time reading it).
#
# Checks that every diff names B's console_input icount as the first
# instruction count whose state differs.
#
# Usage: tests/bench/diff_hour_bench.sh [BUILD_DIR] [SECONDS] [HZ] [WORK] [LATE_PERCENT]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
seconds=${2:-3600}
hz=${3:-1000}
work=${4:-100}
late=${5:-85}
reel="$build/reel"
elf="$build/guests/idle.elf"
tmp=$(mktemp -d)
trap 'touch "$tmp"/done.a "$tmp"/done.b "$tmp"/done.a0; wait; rm -rf "$tmp"' EXIT
common=(-seed 1 -rtc base=2020-01-01T00:00:00 -icount sleep=off -kernel "$elf" -serial stdio
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 -append "hz=$hz seconds=$seconds work=$work")

now() { date +%s.%N; }
# timed NAME CMD...: runs CMD (stdin from $tmp/NAME.in when that is a FIFO),
# prints nothing, leaves seconds in $tmp/NAME.s
timed() {
  local name=$1 t0 t1 in=/dev/null
  shift
  [[ -p $tmp/$name.in ]] && in=$tmp/$name.in
  t0=$(now)
  "$@" <"$in" >"$tmp/$name.out" 2>"$tmp/$name.err" || true
  t1=$(now)
  echo "$t1 - $t0" | bc -l >"$tmp/$name.s"
}
secs() { printf '%.2f' "$(cat "$tmp/$1.s")"; }
size() { stat -c %s "$1"; }
# A live console for recording NAME: a FIFO held open until $tmp/done.NAME
# exists. With a byte to type, the writer waits until the recording's
# journal has AT_BYTES bytes, then for the middle of a keyframe interval
# (below), types the byte and holds on.
live_input() {
  local name=$1 at_bytes=$2 bytes=$3 half=${4:-0}
  mkfifo "$tmp/$name.in"
  (
    if [[ -n $bytes ]]; then
      while [[ ! -e $tmp/done.$name ]] && (($(stat -c %s "$tmp/$name.reel" 2>/dev/null || echo 0) < at_bytes)); do
        sleep 0.1
      done
      mid_interval "$tmp/$name.reel" "$tmp/done.$name" "$half"
      printf '%s' "$bytes"
    fi
    while [[ ! -e $tmp/done.$name ]]; do sleep 0.2; done
  ) >"$tmp/$name.in" 2>/dev/null &
}
# The journal grows by keyframes (an idle halt that returns its timer
# deadline at once is not journaled), so it reaches AT_BYTES just as a
# keyframe is written: HALF seconds later (half the wall time of a
# keyframe interval) the byte lands mid-interval.
mid_interval() {
  sleep "$3"
}
end_field() { grep -o "$2=[0-9]*" "$tmp/$1.err" | tail -1 | cut -d= -f2; }

live_input a 0 ''
timed a "$reel" record -o "$tmp/a.reel" "${common[@]}"
touch "$tmp/done.a"
live_input a0 0 ''
timed a0 "$reel" record --keyframe-interval=0 -o "$tmp/a0.reel" "${common[@]}"
touch "$tmp/done.a0"
timed aq "$reel" record -o "$tmp/aq.reel" "${common[@]}"
at_bytes=$(($(size "$tmp/a.reel") * late / 100))
# Wall seconds per keyframe interval (2^28 instructions) without keyframes.
half=$(echo "$(cat "$tmp/a0.s") * 2^28 / $(end_field a0 icount) / 2" | bc -l)
live_input b "$at_bytes" x "$half"
timed b "$reel" record -o "$tmp/b.reel" "${common[@]}"
touch "$tmp/done.b"
wait

timed replay "$reel" replay "$tmp/a.reel"
timed diff_kf "$reel" diff "$tmp/a.reel" "$tmp/b.reel"
timed diff_nokf "$reel" diff --no-keyframes "$tmp/a.reel" "$tmp/b.reel"
timed diff_cp "$reel" diff --checkpoints-only "$tmp/a.reel" "$tmp/b.reel"
timed diff_quiet "$reel" diff "$tmp/aq.reel" "$tmp/aq.reel"

icount=$(end_field a icount)
time_ns=$(end_field a time_ns)
printf 'guest: idle.elf hz=%s seconds=%s work=%s\n' "$hz" "$seconds" "$work"
printf 'virtual time covered:      %.1f s (%s ns), %s instructions\n' "$(echo "$time_ns / 1000000000" | bc -l)" \
  "$time_ns" "$icount"
grep -E '^idle: [0-9]+ ticks' "$tmp/a.out" || true
printf 'record A (live stdin, keyframes):     %8s s  journal %s bytes\n' "$(secs a)" "$(size "$tmp/a.reel")"
printf '%s\n' "$("$reel" info "$tmp/a.reel" | grep -E '^(events|  idle_advance|  checkpoint|keyframes):' | tr -s ' ' |
  paste -sd ';' | sed 's/;/; /g')"
printf 'record A (live stdin, no keyframes):  %8s s  journal %s bytes\n' "$(secs a0)" "$(size "$tmp/a0.reel")"
printf 'record A (stdin at EOF, keyframes):   %8s s  journal %s bytes\n' "$(secs aq)" "$(size "$tmp/aq.reel")"
printf 'record B (one byte typed):            %8s s  journal %s bytes\n' "$(secs b)" "$(size "$tmp/b.reel")"
printf '(typed once B'"'"'s journal had %s bytes, after a keyframe, %.2f s later)\n' "$at_bytes" "$half"
printf 'replay A:                  %s s\n' "$(secs replay)"
printf 'diff with keyframes:       %s s\n' "$(secs diff_kf)"
grep -E '^(first differing checkpoint|last equal checkpoint|first differing event|  [AB]: |journals read|replayed|first difference|located)' \
  "$tmp/diff_kf.out" | sed 's/^/  /' || true
printf 'diff --no-keyframes:       %s s\n' "$(secs diff_nokf)"
grep -E '^(journals read|replayed|first difference|located)' "$tmp/diff_nokf.out" | sed 's/^/  /' || true
printf 'diff --checkpoints-only:   %s s\n' "$(secs diff_cp)"
grep -E '^(first differing checkpoint|journals read)' "$tmp/diff_cp.out" | sed 's/^/  /' || true
printf 'diff of A (stdin at EOF) with itself: %s s (journals only)\n' "$(secs diff_quiet)"
grep -E '^no difference' "$tmp/diff_quiet.out" | sed 's/^/  /' || true

# The byte reached B's machine at the icount of B's console_input event;
# every diff must name that icount as the first whose state differs.
input_icount=$(grep -o 'B: console_input at icount [0-9]*' "$tmp/diff_kf.out" "$tmp/diff_nokf.out" | head -1 |
  grep -o '[0-9]*$' || true)
status=0
if [[ -z $input_icount ]]; then
  echo "FAIL: no console_input in B named by the diff (was the byte typed before B ended?)" >&2
  cat "$tmp/diff_kf.out" "$tmp/diff_kf.err" >&2
  exit 1
fi
printf 'B typed its byte at icount %s (%.1f%% of the run)\n' "$input_icount" \
  "$(echo "100 * $input_icount / $icount" | bc -l)"
for d in diff_kf diff_nokf; do
  got=$(grep -o '^first difference at icount [0-9]*' "$tmp/$d.out" | grep -o '[0-9]*$' || true)
  if [[ $got == "$input_icount" ]]; then
    echo "$d: first difference at icount $got: correct"
  else
    echo "FAIL: $d names icount '${got}', B's input came at $input_icount" >&2
    status=1
  fi
done
cp_hit=$(grep -o 'B at icount [0-9]*' "$tmp/diff_cp.out" | grep -o '[0-9]*$' || true)
last_equal=$(grep -o '^last equal checkpoint: #[0-9]* at icount [0-9]*' "$tmp/diff_cp.out" | grep -o '[0-9]*$' || true)
if [[ -n $cp_hit && -n $last_equal && $last_equal -le $input_icount && $input_icount -le $cp_hit ]]; then
  echo "diff_cp: difference between icount $last_equal and $cp_hit: correct"
else
  echo "FAIL: --checkpoints-only brackets ($last_equal, $cp_hit], B's input came at $input_icount" >&2
  status=1
fi
exit $status
