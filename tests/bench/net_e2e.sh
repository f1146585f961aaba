#!/usr/bin/env bash
# End-to-end UDP throughput between two guests on one VLAN made of a
# `-net socket` link: the netflood guest as receiver (listen=127.0.0.1:P)
# and as sender (connect=127.0.0.1:P), under `reel run`, under `reel record`
# (then each journal replayed, no sockets) and under qemu-system-i386 when
# it is installed.
#
# Usage: tests/bench/net_e2e.sh BUILD_DIR [COUNT]
#   COUNT        datagrams to send (default 20000)
# Environment:
#   SIZE=1024    UDP payload bytes per datagram (12-1472)
#   WINDOW=0     sender flow control: at most WINDOW datagrams beyond the
#                receiver's last credit (0: a plain flood, drops allowed)
#   RUNS=3       runs per mode; the one with the best delivered rate counts
#                (and the fastest of RUNS replays of its journals)
#   TIMEOUT=120  seconds allowed per guest pair (and per replay)
#   MODES="run record qemu"  which modes to measure
#
# The script measures wall time itself: every console line is stamped as it
# arrives, and the flood window runs from the sender's "receiver ready" to
# the receiver's "received N of M" line (boot and handshakes excluded).
# Guest MIPS is the `reel: end ... icount=` of each side over that side's
# wall time (launch to exit, idle waits included). MB is 10^6 bytes.
# shellcheck disable=SC2054,SC2154  # commas inside QEMU options; f_* come from eval
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [COUNT]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
count=${2:-20000}
size=${SIZE:-1024}
window=${WINDOW:-0}
runs=${RUNS:-3}
limit=${TIMEOUT:-120}
modes=${MODES:-run record qemu}
reel="$build/reel"
elf="$build/guests/netflood.elf"
for f in "$reel" "$elf"; do
  if [ ! -e "$f" ]; then
    echo "missing $f (build the reel and guests targets)" >&2
    exit 2
  fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$tmp"

# (The expression is parenthesised: a bare ">" would be awk output redirection.)
calc() { awk "BEGIN { printf \"%.${2:-3}f\", ($1) }"; }
now() { echo "$EPOCHREALTIME"; }

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    echo $((20000 + RANDOM % 40000))
  fi
}

# Whether something listens on 127.0.0.1:$1 (read from /proc: a probing
# connection would be taken for the peer).
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  grep -qiE "^ *[0-9]+: (0100007F|00000000):$hex [0-9A-F]{8}:[0-9A-F]{4} 0A" /proc/net/tcp 2>/dev/null
}

# Prefixes each line with the wall time at which it arrived; "EOF" when the
# writer closed its end (it exited).
stamp() {
  local line
  while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
  printf '%s EOF\n' "$EPOCHREALTIME"
}

# launch NAME CMD...: runs CMD in the background, stdout stamped into
# $tmp/NAME.out, stderr into $tmp/NAME.err; its pid in launched_pid.
launch() {
  local name=$1
  shift
  "$@" 2>"$tmp/$name.err" > >(stamp >"$tmp/$name.out") &
  launched_pid=$!
  pids+=("$launched_pid")
}

# The stamp of the first stdout line of NAME matching the regex.
stamp_of() { awk -v re="$2" '$0 ~ re { print $1; exit }' "$tmp/$1.out"; }
# The first stdout line of NAME matching the regex, without its stamp.
line_of() { awk -v re="$2" '$0 ~ re { $1 = ""; sub(/^ /, ""); print; exit }' "$tmp/$1.out"; }
# Waits (bounded) until NAME's stamper has seen the end of its input.
wait_eof() {
  for _ in $(seq 250); do
    if tail -n 1 "$tmp/$1.out" 2>/dev/null | grep -q ' EOF$'; then return 0; fi
    sleep 0.02
  done
}

# run_pair MODE: one receiver and one sender; MODE is run, record or qemu.
# Leaves $tmp/recv.* and $tmp/send.* (and journals for record); sets
# pair_ok, t_start, t_send_launch.
run_pair() {
  local mode=$1 port cmd=()
  port=$(free_port)
  case $mode in
    run) cmd=("$reel" run -summary) ;;
    record) cmd=("$reel" record) ;;
    qemu) cmd=(qemu-system-i386 -display none -no-reboot) ;;
  esac
  local common=(-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$elf")
  local args="count=$count size=$size timeout=$limit"
  local recv_cmd=("${cmd[@]}") send_cmd=("${cmd[@]}")
  if [ "$mode" = record ]; then
    recv_cmd+=(-o "$tmp/recv.reel")
    send_cmd+=(-o "$tmp/send.reel")
  fi
  recv_cmd+=("${common[@]}" -append "ip=10.0.2.16 role=recv $args"
    -net nic,model=ne2k_pci,macaddr=52:54:00:00:00:02 -net "socket,listen=127.0.0.1:$port")
  send_cmd+=("${common[@]}" -append "ip=10.0.2.15 peer=10.0.2.16 role=send window=$window $args"
    -net nic,model=ne2k_pci,macaddr=52:54:00:00:00:01 -net "socket,connect=127.0.0.1:$port")
  rm -f "$tmp"/recv.* "$tmp"/send.*
  pids=()
  t_start=$(now)
  launch recv "${recv_cmd[@]}"
  local recv_pid=$launched_pid send_pid=""
  for _ in $(seq 500); do
    if listening "$port" || ! kill -0 "$recv_pid" 2>/dev/null; then break; fi
    sleep 0.01
  done
  t_send_launch=$(now)
  launch send "${send_cmd[@]}"
  send_pid=$launched_pid
  local deadline=$(($(date +%s) + limit)) timed_out=0
  while kill -0 "$recv_pid" 2>/dev/null || kill -0 "$send_pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      timed_out=1
      kill "$recv_pid" "$send_pid" 2>/dev/null || true
      break
    fi
    sleep 0.02
  done
  wait "$recv_pid" 2>/dev/null || true
  wait "$send_pid" 2>/dev/null || true
  pids=()
  wait_eof recv
  wait_eof send
  pair_ok=1
  if [ $timed_out = 1 ]; then
    echo "  $mode: the pair did not finish within ${limit}s; killed" >&2
    pair_ok=0
  fi
  local side
  for side in recv send; do
    if ! grep -q 'netflood: ok' "$tmp/$side.out"; then
      pair_ok=0
      echo "  $mode: the $side side did not finish ok; its last lines:" >&2
      grep -v " EOF$" "$tmp/$side.out" | tail -n 5 | cut -d' ' -f2- | sed 's/^/    /' >&2
      tail -n 3 "$tmp/$side.err" | sed 's/^/    /' >&2
    fi
  done
}

# Figures of the last pair, as shell assignments (eval'd by the caller).
pair_figures() {
  local t_ready t_sent t_received t_recv_end t_send_end rline got of bytes flood
  t_ready=$(stamp_of send 'netflood: receiver ready')
  t_sent=$(stamp_of send 'netflood: sent ')
  t_received=$(stamp_of recv 'netflood: received ')
  t_recv_end=$(stamp_of recv ' EOF$')
  t_send_end=$(stamp_of send ' EOF$')
  rline=$(line_of recv 'netflood: received ')
  read -r got of bytes < <(echo "$rline" | sed -E 's/netflood: received ([0-9]+) of ([0-9]+) datagrams, ([0-9]+) bytes/\1 \2 \3/')
  flood=$(calc "$t_received - $t_ready" 6)
  echo "f_got=$got f_of=$of f_bytes=$bytes f_flood=$flood"
  echo "f_send_s=$(calc "$t_sent - $t_ready" 6)"
  echo "f_rate=$(calc "$got / $flood" 1) f_mbs=$(calc "$bytes / $flood / 1e6" 3)"
  echo "f_sent_rate=$(calc "$of / ($t_sent - $t_ready)" 1)"
  echo "f_loss=$(calc "100 * ($of - $got) / $of" 1)"
  local last=$t_recv_end
  if [ "$(calc "$t_send_end > $t_recv_end" 0)" = 1 ]; then last=$t_send_end; fi
  echo "f_wall=$(calc "$last - $t_start" 3)"
  echo "f_recv_wall=$(calc "$t_recv_end - $t_start" 6) f_send_wall=$(calc "$t_send_end - $t_send_launch" 6)"
}

# measure MODE: RUNS pairs; prints the best one's line, keeps its files.
measure() {
  local mode=$1 label=$2 best_rate=""
  mkdir -p "$tmp/best"
  for _ in $(seq "$runs"); do
    run_pair "$mode"
    [ $pair_ok = 1 ] || continue
    eval "$(pair_figures)"
    if [ -z "$best_rate" ] || [ "$(calc "$f_rate > $best_rate" 0)" = 1 ]; then
      best_rate=$f_rate
      rm -rf "$tmp/best/$mode"
      mkdir -p "$tmp/best/$mode"
      cp "$tmp"/recv.* "$tmp"/send.* "$tmp/best/$mode/"
      pair_figures >"$tmp/best/$mode/figures"
    fi
  done
  if [ -z "$best_rate" ]; then
    printf '%-12s FAILED (every run; see the lines above)\n' "$label"
    return 1
  fi
  eval "$(cat "$tmp/best/$mode/figures")"
  local mips=""
  if [ "$mode" != qemu ]; then
    local ri si
    ri=$(grep -o 'icount=[0-9]*' "$tmp/best/$mode/recv.err" | tail -1 | cut -d= -f2)
    si=$(grep -o 'icount=[0-9]*' "$tmp/best/$mode/send.err" | tail -1 | cut -d= -f2)
    mips=$(printf '  %4.0f/%-4.0f  (icount %s/%s)' "$(calc "$si / $f_send_wall / 1e6" 1)" \
      "$(calc "$ri / $f_recv_wall / 1e6" 1)" "$si" "$ri")
  fi
  printf '%-12s %15s %5s%%  %8.3f s  %9.0f/s  %6.2f MB/s  %8.0f/s  %7.2f s%s\n' "$label" \
    "$f_got/$f_of" "$f_loss" "$f_flood" "$f_rate" "$f_mbs" "$f_sent_rate" "$f_wall" "$mips"
}

# Replays the best recording's two journals RUNS times each (the fastest
# counts); every replay must print what the side printed while recording.
replay_journals() {
  local side j t0 t1 e best icount status same
  for side in send recv; do
    j="$tmp/best/record/$side.reel"
    [ -f "$j" ] || continue
    cut -d' ' -f2- "$tmp/best/record/$side.out" | grep -v '^EOF$' >"$tmp/recorded.txt"
    best="" same="same output as recorded"
    for _ in $(seq "$runs"); do
      t0=$(now)
      status=0
      timeout "$limit" "$reel" replay "$j" >"$tmp/replay.out" 2>"$tmp/replay.err" || status=$?
      t1=$(now)
      icount=$(grep -o 'icount=[0-9]*' "$tmp/replay.err" | tail -1 | cut -d= -f2)
      if [ -z "$icount" ]; then break; fi
      if ! cmp -s "$tmp/recorded.txt" "$tmp/replay.out"; then same="OUTPUT DIFFERS from the recording"; fi
      e=$(calc "$t1 - $t0" 6)
      if [ -z "$best" ] || [ "$(calc "$e < $best" 0)" = 1 ]; then best=$e; fi
    done
    if [ -z "$icount" ]; then
      printf 'replay %-5s FAILED (status %d): %s\n' "$side" "$status" "$(tail -n 1 "$tmp/replay.err")"
      continue
    fi
    printf 'replay %-5s %8.3f s  %4.0f MIPS  journal %.1f MB  status %d, %s\n' "$side" "$best" \
      "$(calc "$icount / $best / 1e6" 1)" "$(calc "$(stat -c %s "$j") / 1e6" 3)" "$status" "$same"
  done
}

echo "netflood: $count datagrams x $size bytes, window $window, best of $runs run(s); MB = 10^6 bytes"
printf '%-12s %15s %6s  %10s  %11s  %11s  %10s  %9s  %s\n' mode delivered loss "flood" "delivered" goodput \
  "sent" "pair wall" "MIPS send/recv"
for mode in $modes; do
  case $mode in
    run) measure run "reel run" || true ;;
    record)
      if measure record "reel record"; then replay_journals; fi
      ;;
    qemu)
      if command -v qemu-system-i386 >/dev/null; then
        measure qemu "qemu" || true
      else
        echo "qemu         qemu-system-i386 not installed: no comparison"
      fi
      ;;
    *) echo "unknown mode '$mode' (run, record, qemu)" >&2 ;;
  esac
done
