#!/usr/bin/env python3
"""Boot-to-lease time of the Linux guest under reel and under qemu-system-i386 -cpu 486.

Usage: tests/bench/linux_boot_bench.py [BUILD_DIR] [RUNS]

Each run starts the emulator on the cached test kernel and the init's initramfs
and stamps the console line "IP-Config: Got DHCP answer" (boot to lease) and the
end of the whole session (TCP echo, DNS, reboot). reel runs three ways: plain
`run`, `record` (the record overhead) and `replay` of that recording. The best
of RUNS is printed for each, with the ratio reel/QEMU. Loopback servers only
(tests/linux/loopback_servers.py). A benchmark, not a test: it never fails on a
slow result.
"""
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEASE = b"IP-Config: Got DHCP answer"
DONE = b"reel-init: rebooting"


def kernel_path():
    # build_kernel.sh prints the cached image's path last (and builds it if missing).
    res = subprocess.run(["bash", os.path.join(ROOT, "tests/linux/build_kernel.sh")],
                         capture_output=True, text=True)
    lines = res.stdout.strip().splitlines()
    path = lines[-1] if lines else ""
    if res.returncode != 0 or not os.path.exists(path):
        sys.exit("tests/linux/build_kernel.sh failed: " + res.stderr.strip()[-200:])
    return path


def timed_run(cmd):
    """Runs cmd, returns (seconds to the lease line, seconds to the end of the session)."""
    start = time.monotonic()
    lease = done = None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    buf = b""
    while True:
        chunk = proc.stdout.read1(4096)
        if not chunk:
            break
        buf += chunk
        now = time.monotonic() - start
        if lease is None and LEASE in buf:
            lease = now
        if done is None and DONE in buf:
            done = now
        buf = buf[-256:]
    proc.wait()
    end = time.monotonic() - start
    return lease, done if done is not None else end


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/release")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    bz = kernel_path()
    initrd = os.path.join(build, "guests/linux_init.cpio")
    servers = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/linux/loopback_servers.py")],
                               stdout=subprocess.PIPE, text=True)
    try:
        echo_port, dns_port = servers.stdout.readline().split()
        append = (f"console=ttyS0 ip=dhcp reel_echo={echo_port} reel_dns_port={dns_port} "
                  "reel_dns_name=reel.test")
        reel = [os.path.join(build, "reel"), "run", "-m", "64", "-kernel", bz, "-initrd", initrd,
                "-append", append, "-net", "nic", "-net", f"user,resolver=127.0.0.1:{dns_port}",
                "-no-reboot", "-serial", "stdio"]
        qemu = ["qemu-system-i386", "-cpu", "486", "-m", "64", "-kernel", bz, "-initrd", initrd,
                "-append", append, "-nographic", "-no-reboot", "-net", "nic,model=ne2k_pci",
                "-net", "user"]
        journal = os.path.join(tempfile.mkdtemp(prefix="reel-boot-bench-"), "linux.reel")
        record = [reel[0], "record", "-o", journal] + reel[2:]
        replay = [reel[0], "replay", journal]
        results = {}
        for name, cmd in (("reel", reel), ("reel record", record), ("reel replay", replay), ("qemu", qemu)):
            best = None
            for _ in range(runs):
                lease, done = timed_run(cmd)
                if lease is None:
                    print(f"{name}: no lease line", file=sys.stderr)
                    continue
                if best is None or lease < best[0]:
                    best = (lease, done)
            results[name] = best
            if best:
                print(f"{name}: boot-to-lease {best[0]:.2f} s, whole session {best[1]:.2f} s")
        if results.get("reel") and results.get("qemu"):
            print(f"ratio reel/qemu (boot-to-lease): {results['reel'][0] / results['qemu'][0]:.2f}")
    finally:
        servers.terminate()


if __name__ == "__main__":
    main()
