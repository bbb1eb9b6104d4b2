#!/usr/bin/env bash
# Assemble the container image's root filesystem without a container engine: the binary, the
# glibc libraries it links (what `ldd` names, nothing else), CA certificates for outbound
# https, a non-root user (65532) and its /data. The Dockerfile's final stage holds the same.
#   deploy/rootfs.sh target/release/gatehouse /tmp/gatehouse-root
#   chroot --userspec=65532:65532 /tmp/gatehouse-root /usr/local/bin/gatehouse serve
set -euo pipefail
bin=${1:?usage: deploy/rootfs.sh BINARY ROOT}
root=${2:?usage: deploy/rootfs.sh BINARY ROOT}
rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/data" "$root/tmp"
install -m 0755 "$bin" "$root/usr/local/bin/gatehouse"
# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and "/lib64/ld-linux-x86-64.so.2 (0x…)"
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/data:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
chown 65532:65532 "$root/data"
du -sk "$root" | awk '{ printf "root filesystem: %.1f MB\n", $1 / 1024 }'
