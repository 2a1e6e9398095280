#!/bin/sh
# setup.sh - install the Debian 12 packages every hugepte ring needs. Idempotent: installs only
# what is missing, and says exactly what and why when it cannot (not root).
set -eu

PKGS="cmake ninja-build make python3 g++ clang-19 lld-19 libclang-rt-19-dev
googletest libbenchmark-dev valgrind
libstdc++-12-dev-arm64-cross libstdc++-12-dev-riscv64-cross qemu-user
qemu-system-x86 qemu-system-arm qemu-system-misc graphviz"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "hugepte setup: missing Debian packages:$missing" >&2
  echo "hugepte setup: run 'make setup' as root, or: sudo apt-get install -y --no-install-recommends$missing" >&2
  exit 1
fi
echo "hugepte setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
