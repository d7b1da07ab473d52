#!/bin/sh
# Makes a busybox root filesystem from Debian's busybox-static (installing it when it
# is missing; no other network access is needed) and imports it into lade as an image,
# busybox:latest by default.
#
#   usage: scripts/busybox-image.sh [LADE [NAME [ARCH]]]
#     LADE  the lade binary (default: target/release/lade, else `lade` on PATH)
#     NAME  the image name (default: busybox:latest)
#     ARCH  a Debian architecture (arm64, armhf, ...) for an image of another platform
#           than this machine's: busybox-static:ARCH is downloaded (apt-get download,
#           after `dpkg --add-architecture ARCH` and `apt-get update` when apt does not
#           know it yet) into target/busybox-debs/ and kept there; the image's config
#           says that platform. Running it needs qemu-user-static (binfmt_misc).
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

ARCH=${3:-}
HOST_ARCH=$(dpkg --print-architecture)
[ "$ARCH" = "$HOST_ARCH" ] && ARCH=""

BB=/bin/busybox
if ! [ -x "$BB" ] || ! "$BB" --list >/dev/null 2>&1; then
    echo "installing busybox-static" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
fi
# The applets and version are read from this machine's busybox: a foreign one may not
# run here (no qemu), and Debian builds both from the same source and configuration.
HOST_BB=$BB
PLATFORM_FLAG=""
if [ -n "$ARCH" ]; then
    case "$ARCH" in
        amd64) PLATFORM=linux/amd64 ;;
        arm64) PLATFORM=linux/arm64 ;;
        armhf) PLATFORM=linux/arm/v7 ;;
        armel) PLATFORM=linux/arm/v5 ;;
        i386) PLATFORM=linux/386 ;;
        ppc64el) PLATFORM=linux/ppc64le ;;
        s390x) PLATFORM=linux/s390x ;;
        riscv64) PLATFORM=linux/riscv64 ;;
        *) echo "busybox-image.sh: unknown architecture $ARCH" >&2; exit 2 ;;
    esac
    PLATFORM_FLAG="--platform $PLATFORM"
    DEBS="$HERE/../target/busybox-debs"
    mkdir -p "$DEBS"
    # One process downloads at a time (tests make images side by side).
    exec 9>"$DEBS/.lock"
    flock 9
    DEB=$(ls "$DEBS"/busybox-static_*_"$ARCH".deb 2>/dev/null | head -1 || true)
    if [ -z "$DEB" ]; then
        echo "downloading busybox-static:$ARCH" >&2
        if ! (cd "$DEBS" && apt-get download -q "busybox-static:$ARCH" >/dev/null 2>&1); then
            dpkg --print-foreign-architectures | grep -qx "$ARCH" || dpkg --add-architecture "$ARCH"
            apt-get update -q >/dev/null
            (cd "$DEBS" && apt-get download -q "busybox-static:$ARCH" >/dev/null)
        fi
        DEB=$(ls "$DEBS"/busybox-static_*_"$ARCH".deb | head -1)
    fi
    flock -u 9
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
if [ -n "$ARCH" ]; then
    dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./bin/busybox > "$R/bin/busybox"
else
    cp "$BB" "$R/bin/busybox"
fi
chmod 0755 "$R/bin/busybox"
for applet in $("$HOST_BB" --list); do
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

SOURCE_DATE_EPOCH=1767225600 "$LADE" import --progress quiet ${LADE_IMPORT_FLAGS:-} $PLATFORM_FLAG \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sh"]' \
    --message "busybox $("$HOST_BB" 2>&1 | head -1 | cut -d' ' -f2) from Debian's busybox-static${ARCH:+ ($ARCH)}" \
    "$ROOT/rootfs.tar" "$NAME"
