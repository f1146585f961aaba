#!/usr/bin/env python3
"""Host-side helpers for traces/record_all.sh: the peers a recorded guest
talks to while its trace is recorded (a TCP echo server for tcpecho, a host
client through -redir for tcpserve, a TFTP file), and the guests' stream
pattern and FNV-1a 64 hash (tests/guests/runtime/stream_hash.h) so the
guests can check what they received. None of this is needed to replay.

usage:
  trace_helpers.py free-port
  trace_helpers.py wait-listen PORT SECONDS
  trace_helpers.py echo-server PORT_FILE          (serves one connection)
  trace_helpers.py redir-client PORT BYTES SEED SECONDS
  trace_helpers.py pattern-file PATH BYTES SEED   (prints the hash)
  trace_helpers.py pattern-hash BYTES SEED
  trace_helpers.py linux-init-hash BYTES          (the Linux init's TCP stream)
"""

import socket
import sys
import threading
import time

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def pattern_byte(seed, i):
    x = (((i >> 2) ^ ((seed * 0x85EBCA6B) & M32)) * 0x9E3779B1) & M32
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & M32
    x ^= x >> 12
    return (x >> (8 * (i & 3))) & 0xFF


def pattern(seed, n):
    return bytes(pattern_byte(seed, i) for i in range(n))


def fnv64(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & M64
    return h


def hex64(h):
    return "0x%016x" % h


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    """Whether something listens on the TCP port, without connecting: a
    probe connection would reach a listening reel as a peer."""
    try:
        with open("/proc/net/tcp") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            return True
    return False


def wait_listen(port, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        state = listening(port)
        if state is None:
            time.sleep(1.5)  # no /proc: give the listener a moment
            return True
        if state:
            return True
        time.sleep(0.05)
    return False


def echo_server(port_file):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    # Renamed into place so the reader never sees half a number.
    import os
    os.rename(port_file + ".tmp", port_file)
    srv.settimeout(300)
    conn, _ = srv.accept()
    total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
        total += len(data)
    conn.close()
    srv.close()
    print("echo-server: echoed %d bytes" % total, file=sys.stderr)


def redir_client(port, nbytes, seed, seconds):
    payload = pattern(seed, nbytes)
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.1)
            continue
        conn.settimeout(seconds)
        received = bytearray()
        done = threading.Event()

        def reader():
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    received.extend(data)
            except OSError:
                pass
            done.set()

        t = threading.Thread(target=reader)
        t.start()
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        t.join(seconds)
        conn.close()
        if not received:
            # The gateway took the connection before the guest listened:
            # it went away unanswered, so try again.
            time.sleep(0.2)
            continue
        if bytes(received) != payload:
            print("redir-client: echo differs (%d bytes back)" % len(received), file=sys.stderr)
            return False
        return True
    print("redir-client: no echo within %d s" % seconds, file=sys.stderr)
    return False


def linux_init_hash(nbytes):
    """FNV-1a 32 of the stream the Linux init (tests/guests/linux/init.c)
    sends: its LCG's bit 16..23, in whole 4 KiB chunks."""
    seed, h = 12345, 0x811C9DC5
    for _ in range(-(-nbytes // 4096) * 4096):
        seed = (seed * 1103515245 + 12345) & M32
        h = ((h ^ ((seed >> 16) & 0xFF)) * 16777619) & M32
    return h


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "free-port":
        print(free_port())
        return 0
    if cmd == "wait-listen":
        return 0 if wait_listen(int(argv[2]), float(argv[3])) else 1
    if cmd == "echo-server":
        echo_server(argv[2])
        return 0
    if cmd == "redir-client":
        return 0 if redir_client(int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5])) else 1
    if cmd == "pattern-file":
        data = pattern(int(argv[4]), int(argv[3]))
        with open(argv[2], "wb") as f:
            f.write(data)
        print(hex64(fnv64(data)))
        return 0
    if cmd == "pattern-hash":
        print(hex64(fnv64(pattern(int(argv[3]), int(argv[2])))))
        return 0
    if cmd == "linux-init-hash":
        print("%08x" % linux_init_hash(int(argv[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
