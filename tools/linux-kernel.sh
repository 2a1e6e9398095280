#!/bin/sh
# linux-kernel.sh DIR - puts Debian 12's current 6.1 kernel for amd64 into DIR (vmlinuz, config,
# version), from Debian's own package (the one linux-image-amd64 depends on), for the linux
# ring. Idempotent: does nothing if DIR/vmlinuz exists.
set -eu
dir=$1
[ -f "$dir/vmlinuz" ] && exit 0
mkdir -p "$dir"
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends:/ { print $2; exit }')
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends:/ { print $2; exit }')
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && { apt-get download -qq "$pkg" 2>/dev/null || { apt-get update -qq && apt-get download -qq "$pkg"; }; })
dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" ./boot
cp "$tmp"/boot/vmlinuz-* "$dir/vmlinuz.part"
cp "$tmp"/boot/config-* "$dir/config"
echo "$pkg" > "$dir/version"
mv "$dir/vmlinuz.part" "$dir/vmlinuz"
echo "linux-kernel: $pkg in $dir"
