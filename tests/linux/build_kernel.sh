#!/bin/bash
# Builds the i386 Linux 6.1 bzImage that reel's Linux tests boot, cached by a hash of
# (kernel source version, config fragment, this script) so a re-run does not rebuild.
# The last line printed is the bzImage path.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
fragment="$here/reel.config"
cache="${REEL_LINUX_CACHE:-$HOME/.cache/reel/linux}"

need=()
for pkg in linux-source-6.1 bc flex bison libelf-dev cpio xz-utils make gcc; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get install -y "${need[@]}"
fi

tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || { echo "build_kernel.sh: $tarball missing" >&2; exit 1; }
src_version="$(dpkg-query -W -f='${Version}' linux-source-6.1)"
key="$( { echo "$src_version"; cat "$fragment" "$0"; } | sha256sum | cut -c1-16)"
out="$cache/$key"
image="$out/bzImage"
if [ -f "$image" ]; then
    echo "cached kernel (key $key)"
    echo "$image"
    exit 0
fi

mkdir -p "$cache"
srcdir="$cache/src-$src_version"
if [ ! -f "$srcdir/.unpacked" ]; then
    rm -rf "$srcdir"
    mkdir -p "$srcdir"
    tar -xJf "$tarball" -C "$srcdir" --strip-components=1
    touch "$srcdir/.unpacked"
fi

build="$cache/build-$key"
rm -rf "$build"
mkdir -p "$build"
cd "$srcdir"
make O="$build" ARCH=i386 tinyconfig >/dev/null
ARCH=i386 scripts/kconfig/merge_config.sh -m -O "$build" "$build/.config" "$fragment"
make O="$build" ARCH=i386 olddefconfig >/dev/null

missing=0
for opt in M486SX MATH_EMULATION PCI ISA NET INET IP_PNP IP_PNP_DHCP NETDEVICES ETHERNET \
    NET_VENDOR_8390 NE2K_PCI NE2000 SERIAL_8250 SERIAL_8250_CONSOLE PRINTK TTY \
    BLK_DEV_INITRD RD_GZIP BINFMT_ELF; do
    if ! grep -q "^CONFIG_$opt=y" "$build/.config"; then
        echo "build_kernel.sh: CONFIG_$opt did not survive olddefconfig" >&2
        missing=1
    fi
done
for opt in SMP MODULES; do
    if grep -q "^CONFIG_$opt=y" "$build/.config"; then
        echo "build_kernel.sh: CONFIG_$opt must be off" >&2
        missing=1
    fi
done
[ $missing -eq 0 ] || exit 1

nice -n 19 make O="$build" ARCH=i386 -j2 bzImage
mkdir -p "$out"
cp "$build/arch/x86/boot/bzImage" "$image.tmp"
cp "$build/.config" "$out/config"
mv "$image.tmp" "$image"
echo "$image"
