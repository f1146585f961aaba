#!/usr/bin/env python3
"""Turns a pcap of a real -net user session (reel's -net dump) into a seed
for tests/fuzz/user_net_fuzz.cc: the guest's frames in order, as frame
records, with the host's side sketched as socket events (a TCP connect
completing after each SYN, the peer's EOF after the guest's FIN) and time
passing where the capture shows a pause. The gateway's own frames are left
out: the fuzzer's gateway makes them again.

usage: pcap_to_user_net_seed.py SESSION.pcap SEED [--max-bytes N] [--config BYTE]
"""
import argparse
import struct


def frames(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic = struct.unpack('<I', data[:4])[0]
    endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    nano = magic in (0xa1b23c4d, 0x4d3cb2a1)
    at = 24
    while at + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + 'IIII', data[at:at + 16])
        at += 16
        yield sec * 1_000_000_000 + (frac if nano else frac * 1000), data[at:at + incl]
        at += incl


def record(kind_bits, payload):
    return bytes([kind_bits]) + struct.pack('>H', len(payload)) + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('pcap')
    ap.add_argument('seed')
    ap.add_argument('--max-bytes', type=int, default=32768)
    ap.add_argument('--config', type=lambda s: int(s, 0), default=0)
    args = ap.parse_args()
    out = bytearray([args.config])
    last_ns = None
    sockets = 0
    for ns, frame in frames(args.pcap):
        if len(frame) < 14 or frame[6:8] == b'\x52\x55':
            continue  # the gateway's own frames
        if last_ns is not None and ns - last_ns > 50_000_000:
            ms = min((ns - last_ns) // 1_000_000, 0xffff)
            out += record(4, struct.pack('>H', ms))  # time passes
        last_ns = ns
        rec = record(0, frame)
        if len(out) + len(rec) > args.max_bytes:
            break
        out += rec
        # IPv4/TCP from the guest: sketch what the host would say.
        if frame[12:14] == b'\x08\x00' and len(frame) >= 34 + 14 and frame[23] == 6:
            ihl = (frame[14] & 0x0f) * 4
            tcp = frame[14 + ihl:]
            if len(tcp) >= 14:
                flags = tcp[13]
                port = tcp[2:4]
                if flags & 0x02 and not flags & 0x10:  # SYN: the connect completes
                    out += record(2, bytes([1, sockets]) + port)
                    sockets += 1
                elif flags & 0x01:  # FIN: the peer closes too
                    out += record(2, bytes([6, max(sockets - 1, 0)]) + port)
    with open(args.seed, 'wb') as f:
        f.write(out)


if __name__ == '__main__':
    main()
