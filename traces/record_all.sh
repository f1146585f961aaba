#!/usr/bin/env bash
# Re-records every regression trace in traces/ and writes its manifest.
#
#   traces/record_all.sh [NAME...]     (default: all of them)
#
# Environment: REEL_BUILD (default build/dev) holds the reel binary and the
# guests (guests/*.elf); REEL overrides the binary. Needs python3 for the
# host-side peers (traces/trace_helpers.py). Every recording uses
# `reel record --embed` (the kernel and TFTP files travel in the journal)
# and a fixed -seed, then `reel check --write-manifest` replays it once
# and writes NAME.manifest with the outcome. A recording whose guest does
# not exit with status 1 (its "ok") stops the script: a trace of a failing
# session is no regression trace.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${REEL_BUILD:-$root/build/dev}
reel=${REEL:-$build/reel}
helpers="$here/trace_helpers.py"
cd "$root"
# Journal headers keep the options as given: relative paths keep them
# free of this machine's directory layout.
guests=$(realpath --relative-to="$root" "$build/guests")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

exit_dev=(-device isa-debug-exit,iobase=0xf4,iosize=0x04)

# record NAME STDIN DESCRIPTION EXPECTS -- MACHINE-OPTIONS...
# EXPECTS is a '|'-separated list of strings the console output must hold.
record() {
  local name=$1 input=$2 description=$3 expects=$4
  shift 5
  local trace="traces/$name.reel"
  rm -f "$trace" "traces/$name.manifest" "$trace.failure.txt"
  local status=0 want_status=${RECORD_STATUS:-1}
  printf '%b' "$input" | "$reel" record --embed -o "$trace" -seed 1 "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    status=$?
  if [[ $status -ne $want_status ]]; then
    echo "record_all: $name: the guest exited with $status, not $want_status (ok):" >&2
    cat "$work/$name.out" "$work/$name.err" >&2
    exit 1
  fi
  local quoted
  quoted=$(printf ' %q' "$@")
  local args=(--write-manifest --description "$description" --command "reel record --embed -o $trace -seed 1$quoted")
  local e
  IFS='|' read -ra list <<<"$expects"
  for e in "${list[@]}"; do
    grep -qF -- "$e" "$work/$name.out" || {
      echo "record_all: $name: the console lacks '$e'" >&2
      tail -n 20 "$work/$name.out" >&2
      exit 1
    }
    args+=(--expect "$e")
  done
  "$reel" check "${args[@]}" "$trace"
  printf '%s: %s bytes\n' "$trace" "$(stat -c %s "$trace")"
}

want() { [[ ${#selected[@]} -eq 0 ]] || [[ " ${selected[*]} " == *" $1 "* ]]; }
selected=("$@")

if want timer; then
  record timer "" "timer guest: PIT IRQ0 at 100 Hz counted while the CPU halts (idle advances)" \
    "timer: 50 ticks, tsc delta plausible" -- \
    -kernel "$guests/timer.elf" -serial stdio "${exit_dev[@]}"
fi

if want echo; then
  record echo 'hello\nworld\nquit\n' "echo guest: interrupt-driven serial input typed on stdin (console_input events)" \
    "echo: hello|echo: world|echo: 3 lines" -- \
    -kernel "$guests/echo.elf" -serial stdio "${exit_dev[@]}"
fi

if want netpeer_socket; then
  # The listening side is recorded; the connecting side is a second reel
  # (run live, not recorded) on the other end of the socket VLAN.
  port=$(python3 "$helpers" free-port)
  link="127.0.0.1:$port"
  (
    python3 "$helpers" wait-listen "$port" 30 &&
      "$reel" run -seed 2 -kernel "$guests/netpeer.elf" -append "ip=10.0.2.16 peer=10.0.2.15 count=4 wait=2000 timeout=40" \
        -serial stdio "${exit_dev[@]}" -net nic,macaddr=52:54:00:00:00:02 -net "socket,connect=$link" \
        >"$work/peer.out" 2>"$work/peer.err"
  ) &
  pids+=($!)
  record netpeer_socket "" "two netpeer guests on one VLAN over -net socket listen/connect: pings both ways and a UDP handshake (this side listens; the peer was a second reel)" \
    "netpeer: role peer, 4 pings to each of 1 peer(s)|peer 10.0.2.16: finished|netpeer: ok" -- \
    -kernel "$guests/netpeer.elf" -append "ip=10.0.2.15 peer=10.0.2.16 count=4 wait=2000 timeout=40" \
    -serial stdio "${exit_dev[@]}" -net nic,macaddr=52:54:00:00:00:01 -net "socket,listen=$link"
  wait "${pids[-1]}" || true
fi

if want dhcpping; then
  record dhcpping "" "dhcpping guest under -net user: DHCP lease with detail, pings of 10.0.2.2 and 10.0.2.3, release" \
    "dhcp nic0: lease 10.0.2.15/24|dhcpping: ok" -- \
    -kernel "$guests/dhcpping.elf" -append "count=3 detail=1 release=1" -serial stdio "${exit_dev[@]}" \
    -net nic -net user
fi

if want tcpecho_nat; then
  # A one-connection echo server on the host's loopback, reached through
  # the gateway's NAT at 10.0.2.2.
  python3 "$helpers" echo-server "$work/echo.port" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $work/echo.port ]] && break; sleep 0.05; done
  port=$(cat "$work/echo.port")
  record tcpecho_nat "" "tcpecho guest: 64 KiB through the -net user TCP NAT to an echo server on the host's 127.0.0.1" \
    "tcpecho: connected, peer mss 1460|tcpecho: sent 65536 bytes, received 65536 bytes|tcpecho: ok" -- \
    -kernel "$guests/tcpecho.elf" -append "port=$port bytes=65536 seed=7 timeout=60" -serial stdio "${exit_dev[@]}" \
    -net nic -net user
  wait "${pids[-1]}" || true
fi

if want tftp_large; then
  mkdir -p "$work/tftp"
  size=393216
  hash=$(python3 "$helpers" pattern-file "$work/tftp/big.bin" $size 11)
  record tftp_large "" "tftpget guest: a 384 KiB file over the -net user TFTP server with blksize 1428 (the file is embedded)" \
    "tftpget: oack blksize 1428 tsize $size|hash $hash|tftpget: ok" -- \
    -kernel "$guests/tftpget.elf" -append "file=big.bin blksize=1428 expect_size=$size expect_hash=$hash timeout=60" \
    -serial stdio "${exit_dev[@]}" -net nic -net "user,tftp=$work/tftp"
fi

if want redir_tcpserve; then
  port=$(python3 "$helpers" free-port)
  hash=$(python3 "$helpers" pattern-hash 65536 3)
  python3 "$helpers" redir-client "$port" 65536 3 60 &
  pids+=($!)
  record redir_tcpserve "" "tcpserve guest: a host client connects through -redir tcp:PORT::8080 and streams 64 KiB that the guest echoes" \
    "tcpserve: connection from 10.0.2.2|tcpserve: received 65536 bytes, sent 65536 bytes, hash $hash|tcpserve: ok" -- \
    -kernel "$guests/tcpserve.elf" -append "port=8080 timeout=60 expect_bytes=65536 expect_hash=$hash" \
    -serial stdio "${exit_dev[@]}" -net nic -net user -redir "tcp:$port::8080"
  wait "${pids[-1]}"
fi

if want linux; then
  # Linux 6.1 (tests/linux/build_kernel.sh; built once, then cached) with the
  # initramfs init: DHCP through the kernel's ne2k-pci driver, a short TCP
  # echo to a loopback server through the NAT, a DNS query through 10.0.2.3 to
  # a loopback resolver, then a reboot that -no-reboot turns into exit 0.
  # The kernel and initramfs are embedded; the trace is about 5 MB.
  kernel=$(bash tests/linux/build_kernel.sh | tail -n 1)
  cp "$kernel" "$work/bzImage"
  cp "$build/guests/linux_init.cpio" "$work/linux_init.cpio"
  python3 tests/linux/loopback_servers.py >"$work/linux.ports" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $work/linux.ports ]] && break; sleep 0.05; done
  read -r echo_port dns_port <"$work/linux.ports"
  bytes=65536
  hash=$(python3 "$helpers" linux-init-hash $bytes)
  RECORD_STATUS=0 record linux "" "Linux 6.1 with its own ne2k-pci driver: DHCP lease from -net user, 64 KiB TCP echo through the NAT, DNS through 10.0.2.3 to a loopback resolver, reboot under -no-reboot (kernel and initramfs embedded)" \
    "eth0: RealTek RTL-8029(AS) found at 0xc000, IRQ 11, 52:54:00:12:34:56.|IP-Config: Got DHCP answer from 10.0.2.2, my address is 10.0.2.15|reel-init: tcp echo $bytes bytes sent fnv1a=$hash received fnv1a=$hash ok|reel-init: dns reel.test A 10.0.2.99|reel-init: rebooting" -- \
    -m 64 -kernel "$work/bzImage" -initrd "$work/linux_init.cpio" \
    -append "console=ttyS0 ip=dhcp reel_echo=$echo_port reel_echo_bytes=$bytes" \
    -net nic -net "user,resolver=127.0.0.1:$dns_port" -no-reboot -serial stdio
fi

echo "record_all: done; check them with: $reel check traces/"
