#!/bin/sh
# Installs lade: the binary and its container init `lade-init` (which lade looks for
# beside itself), a man page for it and for each command (generated from the same
# definitions as its --help), and bash, zsh and fish completions.
#
#   scripts/install.sh                     # builds in release mode, installs under /usr/local
#   scripts/install.sh --prefix DIR        # installs under DIR instead
#   scripts/install.sh --binary PATH       # installs an already built binary (and the
#                                          # lade-init built beside it)
set -eu
cd "$(dirname "$0")/.."

prefix=/usr/local
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        *) echo "usage: scripts/install.sh [--prefix DIR] [--binary PATH]" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    echo "== cargo build --release (the first build takes about 10 minutes on two cores)"
    cargo build --release
    binary=target/release/lade
fi

init="$(dirname "$binary")/lade-init"
if [ ! -x "$init" ]; then
    echo "scripts/install.sh: $init is missing: lade-init is built with lade (cargo build --release) and must be installed beside it" >&2
    exit 1
fi
install -D -m 0755 "$binary" "$prefix/bin/lade"
install -D -m 0755 "$init" "$prefix/bin/lade-init"
lade="$prefix/bin/lade"
"$lade" man-pages "$prefix/share/man/man1"
install -d "$prefix/share/bash-completion/completions" \
    "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
"$lade" completion bash > "$prefix/share/bash-completion/completions/lade"
"$lade" completion zsh > "$prefix/share/zsh/site-functions/_lade"
"$lade" completion fish > "$prefix/share/fish/vendor_completions.d/lade.fish"
# Refresh man's index when man-db is there (man finds the pages without it too).
if command -v mandb >/dev/null 2>&1; then
    mandb -q "$prefix/share/man" >/dev/null 2>&1 || true
fi
echo "installed $lade and lade-init beside it, its man pages (man lade, man lade-build, ...) and shell completions"
