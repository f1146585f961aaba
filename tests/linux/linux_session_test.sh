#!/usr/bin/env bash
# End-to-end Linux session (issue 7): the kernel built by build_kernel.sh boots
# on reel with the initramfs from tests/guests/linux, takes a DHCP lease from
# -net user through the kernel's own NE2000 driver, and its init runs a 2 MiB
# TCP echo through the NAT to a server on 127.0.0.1 and a DNS query through
# 10.0.2.3 to a test resolver on 127.0.0.1. The session is recorded (kernel and
# initramfs embedded), replayed and compared: same console output, same final
# state hash. Where qemu-system-i386 is installed, the same kernel and
# initramfs under `-cpu 486` must print the same step lines.
#
# Usage: linux_session_test.sh BUILD_DIR pci|isa
# Exits 77 (skipped) when no kernel has been built: building one takes many
# minutes, so it is a separate step (tests/linux/build_kernel.sh, or
# REEL_LINUX_BUILD=1 to let this test build it).
set -euo pipefail
build=$1
model=$2
here="$(cd "$(dirname "$0")" && pwd)"
reel="$build/reel"
initrd="$build/guests/linux_init.cpio"

# The cache key of build_kernel.sh (same inputs, same formula), so a kernel
# that is not built yet is detected without starting a build.
cache="${REEL_LINUX_CACHE:-$HOME/.cache/reel/linux}"
if ! dpkg -s linux-source-6.1 >/dev/null 2>&1 && [ "${REEL_LINUX_BUILD:-0}" != 1 ]; then
    echo "SKIP: linux-source-6.1 is not installed; run tests/linux/build_kernel.sh to build the test kernel"
    exit 77
fi
kernel=""
if dpkg -s linux-source-6.1 >/dev/null 2>&1; then
    src_version="$(dpkg-query -W -f='${Version}' linux-source-6.1)"
    key="$( { echo "$src_version"; cat "$here/reel.config" "$here/build_kernel.sh"; } | sha256sum | cut -c1-16)"
    [ -f "$cache/$key/bzImage" ] && kernel="$cache/$key/bzImage"
fi
if [ -z "$kernel" ]; then
    if [ "${REEL_LINUX_BUILD:-0}" != 1 ]; then
        echo "SKIP: no cached test kernel; run tests/linux/build_kernel.sh (or set REEL_LINUX_BUILD=1)"
        exit 77
    fi
    kernel="$("$here/build_kernel.sh" | tail -n 1)"
fi
[ -f "$initrd" ] || { echo "FAIL: $initrd missing (the linux_initramfs target)"; exit 1; }

tmp="$(mktemp -d)"
ports="$tmp/ports"
python3 "$here/loopback_servers.py" > "$ports" &
servers=$!
trap 'kill $servers 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -s "$ports" ] && break; sleep 0.1; done
read -r echo_port dns_port < "$ports"

case "$model" in
    pci) machine=(-net nic,model=ne2k_pci); extra="" ;;
    # No netdev=: the ne driver probes 0x300 and finds the IRQ by autoprobe.
    isa) machine=(-M isapc -net nic,model=ne2k_isa); extra="" ;;
    *) echo "usage: $0 BUILD_DIR pci|isa"; exit 2 ;;
esac
append="console=ttyS0 ip=dhcp${extra} reel_echo=$echo_port"
journal="$tmp/linux.reel"

status=0
timeout 600 "$reel" record --embed -o "$journal" -seed 1 -m 64 -kernel "$kernel" -initrd "$initrd" -append "$append" \
    "${machine[@]}" -net user,resolver=127.0.0.1:$dns_port -no-reboot -serial stdio \
    > "$tmp/record.out" 2> "$tmp/record.err" || status=$?
fail() { echo "FAIL: $*"; echo "--- console"; tail -n 30 "$tmp/record.out"; echo "--- reel"; tail -n 5 "$tmp/record.err"; exit 1; }
[ "$status" -eq 0 ] || fail "record exited with $status (want 0: the init reboots under -no-reboot)"
expect=(
    "IP-Config: Got DHCP answer from 10.0.2.2, my address is 10.0.2.15"
    "reel-init: tcp echo 2097152 bytes sent fnv1a=c4e27085 received fnv1a=c4e27085 ok"
    "reel-init: dns reel.test A 10.0.2.99"
    "reel-init: rebooting"
)
if [ "$model" = isa ]; then expect+=("ne ne.0 eth0: NE2000 found at 0x300, using IRQ 9."); fi
if [ "$model" = pci ]; then expect+=("eth0: RealTek RTL-8029(AS) found at 0xc000, IRQ 11, 52:54:00:12:34:56."); fi
for line in "${expect[@]}"; do
    grep -qF "$line" "$tmp/record.out" || fail "console lacks '$line'"
done
rec_hash="$(grep -o 'state_hash=0x[0-9a-f]*' "$tmp/record.err" | tail -n 1)"
[ -n "$rec_hash" ] || fail "no state hash in the record's summary"

# Replay with no servers, no kernel file and no network: the journal has it all.
kill $servers 2>/dev/null || true
status=0
timeout 600 "$reel" replay "$journal" > "$tmp/replay.out" 2> "$tmp/replay.err" || status=$?
[ "$status" -eq 0 ] || { cat "$tmp/replay.err"; fail "replay exited with $status"; }
cmp -s "$tmp/record.out" "$tmp/replay.out" || fail "replay console output differs from the recording's"
rep_hash="$(grep -o 'state_hash=0x[0-9a-f]*' "$tmp/replay.err" | tail -n 1)"
[ "$rep_hash" = "$rec_hash" ] || fail "replay $rep_hash, recording $rec_hash"
echo "reel: record and replay agree ($rec_hash), $(grep -c . "$tmp/record.out") console lines, journal $(stat -c %s "$journal") bytes"

if [ "$model" = pci ]; then
    if command -v qemu-system-i386 >/dev/null; then
        "$here/qemu_oracle.sh" "$kernel" "$initrd" "$tmp/qemu.log" || true
        for line in "${expect[@]}"; do
            grep -qF "$line" "$tmp/qemu.log" || { tail -n 20 "$tmp/qemu.log"; echo "FAIL: QEMU did not print '$line'"; exit 1; }
        done
        echo "qemu-system-i386 -cpu 486 prints the same step lines"
    else
        echo "note: qemu-system-i386 not installed; the QEMU comparison was skipped"
    fi
fi
echo "PASS"
