#!/bin/sh
# Makes a busybox root filesystem from Debian's busybox-static (installing it when it
# is missing; no other network access is needed) and imports it into lade as an image,
# busybox:latest by default.
#
#   usage: scripts/busybox-image.sh [LADE [NAME]]
#     LADE  the lade binary (default: target/release/lade, else `lade` on PATH)
#     NAME  the image name (default: busybox:latest)
#
# The store is lade's usual one: --root via $LADE_ROOT, else the default. The rootfs
# tarball and the image are the same on every run (SOURCE_DATE_EPOCH is fixed).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
LADE=${1:-}
NAME=${2:-busybox:latest}
if [ -z "$LADE" ]; then
    if [ -x "$HERE/../target/release/lade" ]; then LADE="$HERE/../target/release/lade"; else LADE=lade; fi
fi

BB=/bin/busybox
if ! [ -x "$BB" ] || ! "$BB" --list >/dev/null 2>&1; then
    echo "installing busybox-static" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
fi

ROOT=$(mktemp -d /tmp/lade-busybox.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
chmod 0755 "$ROOT"
mkdir -p "$ROOT/rootfs"
R="$ROOT/rootfs"
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/etc" "$R/root" "$R/home" \
         "$R/var/tmp" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp"
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 0700 "$R/root"
cp "$BB" "$R/bin/busybox"
chmod 0755 "$R/bin/busybox"
for applet in $("$BB" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
ln -sf ../../bin/busybox "$R/usr/bin/env"
cat > "$R/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$R/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
nogroup:x:65534:
GROUP
echo busybox > "$R/etc/hostname"
: > "$R/etc/hosts"
: > "$R/etc/resolv.conf"
tar --sort=name --mtime='2026-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
    -C "$R" -cf "$ROOT/rootfs.tar" .

SOURCE_DATE_EPOCH=1767225600 "$LADE" import --progress quiet ${LADE_IMPORT_FLAGS:-} \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sh"]' \
    --message "busybox $("$BB" 2>&1 | head -1 | cut -d' ' -f2) from Debian's busybox-static" \
    "$ROOT/rootfs.tar" "$NAME"
