#!/usr/bin/env python3
"""Writes the newc cpio initramfs for reel's Linux guest: /dev, /dev/console
(char 5,1, needed because devtmpfs is not mounted before init opens it) and
/init. Fixed inode numbers and mtime 0, so the archive is byte-identical
from build to build (the journal hashes it)."""
import sys


def entry(out, ino, name, mode, data=b"", rdev=(0, 0), nlink=1):
    name_bytes = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_bytes), 0]
    out += b"070701" + b"".join(b"%08X" % f for f in fields) + name_bytes
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_initramfs.py INIT_ELF OUT.cpio")
    try:
        with open(sys.argv[1], "rb") as f:
            init = f.read()
    except OSError as e:
        sys.exit(f"make_initramfs.py: {sys.argv[1]}: {e.strerror}")
    out = bytearray()
    entry(out, 1, "dev", 0o040755, nlink=2)
    entry(out, 2, "dev/console", 0o020600, rdev=(5, 1))
    entry(out, 3, "init", 0o100755, init)
    entry(out, 0, "TRAILER!!!", 0)
    out += b"\0" * (-len(out) % 512)
    with open(sys.argv[2], "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
