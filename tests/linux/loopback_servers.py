#!/usr/bin/env python3
"""Loopback servers for the Linux guest under QEMU: a TCP echo server and a
DNS responder that answers every A query with 10.0.2.99. Prints
"ECHO_PORT DNS_PORT" once both listen; runs until killed."""
import socket
import sys
import threading


def echo_conn(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


def echo_server(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=echo_conn, args=(conn,), daemon=True).start()


def dns_server(sock):
    while True:
        query, peer = sock.recvfrom(512)
        if len(query) < 12:
            continue
        end = 12
        while end < len(query) and query[end]:
            end += query[end] + 1
        question = query[12:end + 5]
        reply = query[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question
        reply += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([10, 0, 2, 99])
        sock.sendto(reply, peer)


def main():
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    threading.Thread(target=echo_server, args=(tcp,), daemon=True).start()
    threading.Thread(target=dns_server, args=(udp,), daemon=True).start()
    print(tcp.getsockname()[1], udp.getsockname()[1], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
