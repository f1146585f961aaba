#!/bin/sh
# Regenerates tests/guests/expected/<name>.txt from QEMU, the oracle for the
# guests' serial output. Usage: tests/guests/update_expected.sh [build-dir]
# (default: build). The exact commands are listed in expected/README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
guests=$build/guests
qemu="timeout 120 qemu-system-i386 -display none -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04"

run() { # name expected-status qemu-args...
  name=$1 want=$2
  shift 2
  set +e
  $qemu -kernel "$guests/$name.elf" "$@" > "$here/expected/$name.txt"
  status=$?
  set -e
  if [ "$status" != "$want" ]; then
    echo "$name: exit status $status, expected $want" >&2
    exit 1
  fi
  echo "$name: ok"
}

run hello 1 -append "hello-arg=1 two"
run timer 1
printf 'hello\nworld\nquit\n' | run echo 1
run rtc 1 -rtc base=2026-11-25T04:43:12
run exceptions 1
run compute 1 -append iterations=2
