#!/usr/bin/env bash
# Guest MIPS of the compute guest under `reel run` and `reel record`, side by
# side with qemu-system-i386 -icount shift=0 on the same ELF, plus start-up
# time. Usage: tests/bench/mips.sh [BUILD_DIR] [ITERATIONS]
set -euo pipefail
export LC_ALL=C  # a decimal point in $EPOCHREALTIME
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
iterations=${2:-20}
reel="$build/reel"
elf="$build/guests/compute.elf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(-kernel "$elf" -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -append "iterations=$iterations")

elapsed() { echo "$2 - $1" | bc -l; }
# best_of N CMD...: the shortest wall time of N runs (seconds). The clock is
# bash's own $EPOCHREALTIME: a `date` process around each run would add its
# own start-up (several ms on a small VM) to the start-up measured.
best_of() {
  local n=$1 best=""
  shift
  for _ in $(seq "$n"); do
    local t0 t1 e
    t0=$EPOCHREALTIME
    "$@" >"$tmp/last.out" 2>"$tmp/last.err" || true
    t1=$EPOCHREALTIME
    e=$(elapsed "$t0" "$t1")
    if [ -z "$best" ] || [ "$(echo "$e < $best" | bc -l)" = 1 ]; then best=$e; fi
  done
  echo "$best"
}

run_s=$(best_of 3 "$reel" run -summary "${common[@]}")
icount=$(grep -o 'icount=[0-9]*' "$tmp/last.err" | tail -1 | cut -d= -f2)
cp "$tmp/last.out" "$tmp/run.out"
rec_s=$(best_of 3 "$reel" record -o "$tmp/c.reel" "${common[@]}")
start_s=$(best_of 5 "$reel" run -kernel "$build/guests/hello.elf" -serial none -device isa-debug-exit,iobase=0xf4,iosize=0x04)
start_ms=$(echo "$start_s * 1000" | bc -l)

printf 'guest instructions:     %s\n' "$icount"
printf 'reel run:               %.3f s  %.0f MIPS\n' "$run_s" "$(echo "$icount / $run_s / 1000000" | bc -l)"
printf 'reel record:            %.3f s  %.0f MIPS  (record/run %.3f)\n' "$rec_s" \
  "$(echo "$icount / $rec_s / 1000000" | bc -l)" "$(echo "$rec_s / $run_s" | bc -l)"
printf 'reel start-up (hello):  %.1f ms\n' "$start_ms"

if command -v qemu-system-i386 >/dev/null; then
  q_s=$(best_of 3 timeout 600 qemu-system-i386 -icount shift=0 -display none -no-reboot "${common[@]}")
  cp "$tmp/last.out" "$tmp/qemu.out"
  printf 'qemu -icount shift=0:   %.3f s  %.0f MIPS\n' "$q_s" "$(echo "$icount / $q_s / 1000000" | bc -l)"
  printf 'wall-time ratio reel/qemu: %.2f\n' "$(echo "$run_s / $q_s" | bc -l)"
  if ! cmp -s "$tmp/run.out" "$tmp/qemu.out"; then echo "note: console output differs from QEMU's"; fi
else
  echo "qemu-system-i386 not installed: no comparison"
fi
