#!/bin/sh
# Makes a Debian bookworm base image with mmdebstrap from Debian's mirror (minbase, with
# the bookworm, bookworm-updates and bookworm-security sources) and imports it into lade
# as debian:bookworm with CMD ["bash"]. The rootfs tarball is kept and reused.
#
#   usage: scripts/debian-image.sh [LADE [NAME]]
#     LADE  the lade binary (default: target/release/lade, else `lade` on PATH)
#     NAME  the image name (default: debian:bookworm)
#   env:  DEBIAN_ROOTFS  where the tarball is kept (default /tmp/lade-debian-bookworm.tar)
#         LADE_ROOT      the store (default: lade's usual one)
#
# When this machine's TLS goes through a proxy with its own CA (certificates in
# /usr/local/share/ca-certificates), those certificates are added to the base (and
# update-ca-certificates run in it when it has ca-certificates), so that RUN steps that
# download over HTTPS trust it; the script says so.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
LADE=${1:-}
NAME=${2:-debian:bookworm}
if [ -z "$LADE" ]; then
    if [ -x "$HERE/../target/release/lade" ]; then LADE="$HERE/../target/release/lade"; else LADE=lade; fi
fi
ROOTFS=${DEBIAN_ROOTFS:-/tmp/lade-debian-bookworm.tar}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if [ ! -s "$ROOTFS" ]; then
    command -v mmdebstrap >/dev/null || {
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null
    }
    CA_HOOK=""
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        echo "debian-image: adding this machine's CA certificates from /usr/local/share/ca-certificates to the base (TLS here goes through a proxy)"
        CA_HOOK='mkdir -p "$1/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"'
    fi
    # mmdebstrap picks the output's format by its extension.
    tmp="${ROOTFS%.tar}.partial.tar"
    rm -rf "$tmp"
    # shellcheck disable=SC2016
    mmdebstrap --quiet --variant=minbase \
        ${CA_HOOK:+--customize-hook="$CA_HOOK"} \
        bookworm "$tmp" \
        "deb $MIRROR bookworm main" \
        "deb $MIRROR bookworm-updates main" \
        "deb $SECURITY bookworm-security main"
    mv "$tmp" "$ROOTFS"
fi
"$LADE" import --change 'CMD ["bash"]' "$ROOTFS" "$NAME"
