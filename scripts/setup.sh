#!/usr/bin/env bash
# Installs what reel needs on a Debian 12 machine, skipping what is there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev           # libFuzzer and sanitizers for the fuzz build
  gcc-multilib                       # 32-bit guest programs built by the host gcc
  libcapstone-dev libxxhash-dev libcereal-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev                         # compressed files embedded in journals (record --embed)
  qemu-system-x86                    # oracle: the same guest ELF under QEMU
  gdb bc
  python3                            # test helpers and the Linux initramfs packer
  tshark                             # checks the pcap files of -net dump
  libslirp-dev                       # oracle: QEMU's user-mode network, in-process
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; reel only reads files.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all dependencies present"
