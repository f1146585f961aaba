#!/bin/bash
# Boots the Linux guest (bzImage + linux_init.cpio) under qemu-system-i386 -cpu 486,
# the oracle for reel's Linux session: a TCP echo server and a one-answer DNS
# responder run on 127.0.0.1 (slirp forwards 10.0.2.2 there), and the init's step
# lines appear on the console. Usage: qemu_oracle.sh BZIMAGE INITRD [LOG]
set -euo pipefail
kernel="$1"
initrd="$2"
log="${3:-/dev/stdout}"
here="$(cd "$(dirname "$0")" && pwd)"
command -v qemu-system-i386 >/dev/null || { echo "qemu-system-i386 not installed" >&2; exit 77; }

ports="$(mktemp)"
python3 "$here/loopback_servers.py" > "$ports" &
servers=$!
trap 'kill $servers 2>/dev/null || true; rm -f "$ports"' EXIT
for _ in $(seq 50); do [ -s "$ports" ] && break; sleep 0.1; done
read -r echo_port dns_port < "$ports"

start=$(date +%s.%N)
timeout 120 qemu-system-i386 -cpu 486 -m 64 -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 ip=dhcp reel_echo=$echo_port reel_dns_port=$dns_port reel_dns_name=reel.test" \
    -nographic -no-reboot -net nic,model=ne2k_pci -net user > "$log" 2>&1 || true
end=$(date +%s.%N)
echo "qemu wall time: $(echo "$end - $start" | bc) s" >> "$log"
