#!/bin/bash
# Runs podman's own CLI system tests (test/system/*.bats of podman 4.3.1, Debian
# bookworm's podman) with lade standing in for podman, and prints per file how many
# tests passed, failed and were skipped. Not part of the test suite: it measures lade
# as a Docker-compatible command line against another tool's expectations.
#
#   usage: scripts/podman-system-tests.sh [BATS_FILE...]
#     BATS_FILE  file names in podman's test/system (030-run.bats, or just 030-run);
#                default: the files about behaviour Docker has too (DOCKER_FILES below)
#
#   environment:
#     LADE        the lade binary (default: target/debug/lade, else target/release/lade)
#     OUT         where the TAP output of each file goes
#                 (default: target/podman-system-tests)
#     KEEP=1      keep the temporary directory (podman's tests, the store, the wrapper)
#     TRANSLATE=0 pass every argument to lade untouched; by default (1) the wrapper
#                 rewrites the few podman-only spellings that have an exact Docker
#                 equivalent (scripts/podman_translate.py, listed in the doc)
#     DOC=1       write the counts and the per-test classification into
#                 docs/podman-system-tests.md (its generated section)
#
# What it needs (as root; it installs what is missing with apt-get): bats, jq, socat,
# busybox-static, dpkg-dev (for `apt-get source`), and Debian's source archive: podman's
# tests come from `apt-get source podman` (source package libpod 4.3.1+ds1, which keeps
# test/system), through a deb-src entry for bookworm in a temporary apt configuration
# (its own sources file and lists directory, removed on exit; the system's apt lists are
# not touched).
#
# podman's test image (quay.io/libpod/testimage, an alpine with busybox-extras) cannot
# be pulled here, so a stand-in is built with lade: Debian's busybox-static
# (scripts/busybox-image.sh), alpine's users and groups, /home/podman/testimage-id
# (the tag, mtime 1600000000), /home/podman/pause, an /etc/os-release, /etc/mtab,
# /etc/services,
# printenv (a script), /bin/busybox-extras (alpine's httpd, nc...: busybox here), the labels
# created_by and created_at, WORKDIR /home/podman and the CMD of build-testimage. It is
# tagged with the name and date helpers.bash expects.
#
# podman is replaced by a wrapper that runs lade with a temporary store (LADE_ROOT) and
# passes the arguments through, rewriting only the podman spellings that have an exact
# Docker equivalent (scripts/podman_translate.py; TRANSLATE=0 for none). One thing in podman's harness is changed:
# helpers.bash's basic_setup/basic_teardown, which run before and after every test,
# use podman-only forms (`rm -t 0 --all --force --ignore`, `ps --external`,
# `pod rm`), so they are redefined with Docker's forms of the same clean-up
# (`rm -f` of what `ps -aq` lists, `network prune --force`), and its `images --all`
# is `images` (lade lacks Docker's -a, which only adds intermediate build images);
# otherwise every test would fail in its setup. The tests themselves are run as podman wrote them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PODMAN_VERSION=4.3.1

# podman's files about behaviour Docker has too. Left out as podman-only: 011-image
# (sign), 015-help (podman's help layout), 037-runlabel, 060-mount (image/container
# mount), 170-run-userns (--userns=keep-id/auto), 200-pod, 220-healthcheck (systemd
# timers), 250-systemd, 251/270/271-system-service, 255-auto-update, 260-sdnotify,
# 272-system-connection, 330-corrupt-images (pulls from quay.io and breaks c/storage),
# 400-unprivileged-access (rootless), 410-selinux, 420-cgroups (--cgroup-manager),
# 520-checkpoint, 600-completion (podman's __complete), 610-format (podman's --format
# on every command), 700-play, 710-kube, 750-trust, 800-config (containers.conf),
# 900-ssh.
DOCKER_FILES="001-basic 005-info 010-images 020-tag 030-run 032-sig-proxy 035-logs
040-ps 045-start 050-stop 055-rm 065-cp 070-build 075-exec 080-pause 090-events
110-history 120-load 125-import 130-kill 140-diff 150-login 160-volumes 180-blkio
190-run-ipcns 280-update 300-cli-parsing 320-system-df 450-interactive 500-networking"

if [ "$(id -u)" != 0 ]; then
    echo "podman-system-tests: run as root (lade's sandboxes, apt-get)" >&2
    exit 2
fi

LADE=${LADE:-}
if [ -z "$LADE" ]; then
    if [ -x "$REPO/target/debug/lade" ]; then LADE=$REPO/target/debug/lade
    elif [ -x "$REPO/target/release/lade" ]; then LADE=$REPO/target/release/lade
    else echo "podman-system-tests: no lade binary (cargo build, or set LADE)" >&2; exit 2
    fi
fi
LADE=$(cd "$(dirname "$LADE")" && pwd)/$(basename "$LADE")
OUT=${OUT:-$REPO/target/podman-system-tests}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

WORK=$(mktemp -d /tmp/lade-podman-tests.XXXXXX)
APT_SOURCES=/etc/apt/sources.list.d/lade-podman-tests-src.sources
cleanup() {
    rm -f "$APT_SOURCES"
    # containers a test left running hold mounts in the store; remove them first
    if [ -x "$WORK/bin/podman" ]; then
        ids=$("$WORK/bin/podman" ps -aq 2>/dev/null)
        [ -n "$ids" ] && "$WORK/bin/podman" rm -f $ids >/dev/null 2>&1
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ---------------------------------------------------------------------------
need=""
command -v bats >/dev/null || need="$need bats"
command -v jq >/dev/null || need="$need jq"
command -v socat >/dev/null || need="$need socat"   # 450-interactive's ptys
command -v dpkg-source >/dev/null || need="$need dpkg-dev"
{ [ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1; } || need="$need busybox-static"
if [ -n "$need" ]; then
    echo "installing$need" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >/dev/null || exit 2
fi

# --- podman's tests, from Debian's source package ------------------------------------
cat > "$APT_SOURCES" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
APT_OPTS=(-o "Dir::State::Lists=$WORK/apt-lists" -o "Dir::Etc::SourceList=$APT_SOURCES"
          -o Dir::Etc::SourceParts=/dev/null -o APT::Sandbox::User=root)
mkdir -p "$WORK/apt-lists/partial" "$WORK/src"
echo "getting podman's tests: apt-get source podman (bookworm)" >&2
apt-get update -q "${APT_OPTS[@]}" >/dev/null || { echo "apt-get update (deb-src) failed" >&2; exit 2; }
(cd "$WORK/src" && apt-get source -q --download-only "${APT_OPTS[@]}" podman >/dev/null) \
    || { echo "apt-get source podman failed" >&2; exit 2; }
rm -f "$APT_SOURCES"
orig=$(ls "$WORK"/src/libpod_"$PODMAN_VERSION"*.orig.tar.* 2>/dev/null | head -1)
[ -n "$orig" ] || { echo "no libpod $PODMAN_VERSION source tarball" >&2; exit 2; }
top=$(tar -tf "$orig" | head -1 | cut -d/ -f1)
tar -xf "$orig" -C "$WORK/src" "$top/test/system" || exit 2
T=$WORK/src/$top/test/system
echo "podman's tests: $(basename "$orig") ($T)" >&2

# --- the harness: podman is lade with a store of its own -----------------------------
export LADE_ROOT=$WORK/store
mkdir -p "$WORK/bin" "$LADE_ROOT"
TRANSLATE=${TRANSLATE:-1}
if [ "$TRANSLATE" = 1 ]; then
    cat > "$WORK/bin/podman" <<EOF
#!/bin/sh
LADE_ROOT='$LADE_ROOT' PODMAN_TRANSLATE=1 exec python3 '$HERE/podman_translate.py' '$LADE' "\$@"
EOF
else
    cat > "$WORK/bin/podman" <<EOF
#!/bin/sh
LADE_ROOT='$LADE_ROOT' exec '$LADE' "\$@"
EOF
fi
chmod 755 "$WORK/bin/podman"

cat >> "$T/helpers.bash" <<'EOF'

# --- lade's run of these tests: basic_setup/basic_teardown in Docker's forms ---------
# (podman's `rm -t 0 --all --force --ignore`, `ps --external` and `pod rm` are
# podman-only; the clean-up is the same, written as a Docker user would.)
function basic_setup() {
    run_podman ps -aq
    if [ -n "$output" ]; then
        run_podman rm -f $output
    fi

    # (podman's setup lists `images --all`; lade has no --all, and Docker's only adds
    # intermediate build images, which lade does not keep: left out here)
    # (podman lists an image's first name first; lade's order differs, so the test
    # image's id is found before the stray names are removed, so that removing a
    # stray tag by id does not remove the test image too)
    run_podman images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
    local all_images=("${lines[@]}")
    for line in "${all_images[@]}"; do
        set $line
        if [ "$1" == "$PODMAN_TEST_IMAGE_FQN" ]; then PODMAN_TEST_IMAGE_ID=$2; fi
    done
    for line in "${all_images[@]}"; do
        set $line
        if [ "$1" != "$PODMAN_TEST_IMAGE_FQN" ]; then
            echo "# setup(): removing stray image $1" >&3
            run_podman rmi --force "$1" >/dev/null 2>&1 || true
            if [[ $2 != "$PODMAN_TEST_IMAGE_ID" ]]; then
                echo "# setup(): removing stray image $2" >&3
                run_podman rmi --force "$2" >/dev/null 2>&1 || true
            fi
        fi
    done
    run_podman images --format '{{.Repository}}:{{.Tag}}'
    if ! [[ "$output" =~ $PODMAN_TEST_IMAGE_FQN ]]; then
        # the stand-in test image was removed by a test: load it again (no pull here)
        run_podman load -i "$LADE_TESTIMAGE_ARCHIVE"
    fi

    PODMAN_TMPDIR=$(mktemp -d --tmpdir=${BATS_TMPDIR:-/tmp} podman_bats.XXXXXX)
    MOST_RECENT_PODMAN_COMMAND=
}

function basic_teardown() {
    echo "# [teardown]" >&2
    run_podman '?' ps -aq
    if [ -n "$output" ]; then
        run_podman '?' rm -f $output
    fi
    run_podman '?' network prune --force

    command rm -rf $PODMAN_TMPDIR
}
EOF

# --- the stand-in test image ---------------------------------------------------------
tag=$(sed -n 's/^PODMAN_TEST_IMAGE_TAG=.*:-"\([0-9]*\)"}.*/\1/p' "$T/helpers.bash")
[ -n "$tag" ] || { echo "no PODMAN_TEST_IMAGE_TAG in helpers.bash" >&2; exit 2; }
IMAGE=quay.io/libpod/testimage:$tag
echo "building the stand-in $IMAGE" >&2
"$HERE/busybox-image.sh" "$LADE" lade-testimage-base:latest >/dev/null || exit 2
C=$WORK/testimage
mkdir -p "$C"
echo "$tag" > "$C/testimage-id"
touch --date=@1600000000 "$C/testimage-id"
cat > "$C/pause" <<'EOF'
#!/bin/sh
#
# Trivial little pause script, used in one of the pod tests
#
echo Confirmed: testimage pause invoked as $0
while :; do
    sleep 0.1
done
EOF
chmod 755 "$C/pause"
cat > "$C/os-release" <<EOF
NAME="lade's stand-in for podman's testimage (busybox)"
ID=busybox
VERSION_ID=$tag
PRETTY_NAME="lade's stand-in for podman's testimage"
EOF
# alpine's busybox has printenv; Debian's busybox-static has not
cat > "$C/printenv" <<'EOF'
#!/bin/sh
[ $# -eq 0 ] && exec env -u SHLVL
rc=0
for v in "$@"; do
    if eval "[ \"\${$v+set}\" = set ]"; then eval "printf '%s\\n' \"\$$v\""; else rc=1; fi
done
exit $rc
EOF
chmod 755 "$C/printenv"
# alpine has /etc/services (140-diff removes it); Debian's, from netbase, or a line
if [ -f /etc/services ]; then cp /etc/services "$C/services"
else printf 'ssh\t\t22/tcp\n' > "$C/services"; fi
# alpine 3.16's users and groups (the tests use some of them, e.g. the group ping)
cat > "$C/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/ash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/mail:/sbin/nologin
news:x:9:13:news:/usr/lib/news:/sbin/nologin
uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin
operator:x:11:0:operator:/root:/sbin/nologin
man:x:13:15:man:/usr/man:/sbin/nologin
postmaster:x:14:12:postmaster:/var/mail:/sbin/nologin
cron:x:16:16:cron:/var/spool/cron:/sbin/nologin
ftp:x:21:21::/var/lib/ftp:/sbin/nologin
sshd:x:22:22:sshd:/dev/null:/sbin/nologin
at:x:25:25:at:/var/spool/cron/atjobs:/sbin/nologin
squid:x:31:31:Squid:/var/cache/squid:/sbin/nologin
xfs:x:33:33:X Font Server:/etc/X11/fs:/sbin/nologin
games:x:35:35:games:/usr/games:/sbin/nologin
cyrus:x:85:12::/usr/cyrus:/sbin/nologin
vpopmail:x:89:89::/var/vpopmail:/sbin/nologin
ntp:x:123:123:NTP:/var/empty:/sbin/nologin
smmsp:x:209:209:smmsp:/var/spool/mqueue:/sbin/nologin
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
EOF
cat > "$C/group" <<'EOF'
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
sys:x:3:root,bin,adm
adm:x:4:root,adm,daemon
tty:x:5:
disk:x:6:root,adm
lp:x:7:lp
mem:x:8:
kmem:x:9:
wheel:x:10:root
floppy:x:11:root
mail:x:12:mail
news:x:13:news
uucp:x:14:uucp
man:x:15:man
cron:x:16:cron
console:x:17:
audio:x:18:
cdrom:x:19:
dialout:x:20:root
ftp:x:21:
sshd:x:22:
input:x:23:
at:x:25:at
tape:x:26:root
video:x:27:root
netdev:x:28:
readproc:x:30:
squid:x:31:squid
xfs:x:33:xfs
kvm:x:34:kvm
games:x:35:
shadow:x:42:
cdrw:x:80:
www-data:x:82:
usb:x:85:
vpopmail:x:89:
users:x:100:games
ntp:x:123:
nofiles:x:200:
smmsp:x:209:smmsp
locate:x:245:
abuild:x:300:
utmp:x:406:
ping:x:999:
nogroup:x:65533:
nobody:x:65534:
EOF
cat > "$C/Dockerfile" <<EOF
FROM lade-testimage-base:latest
COPY passwd group os-release services /etc/
COPY testimage-id pause /home/podman/
COPY printenv /usr/bin/
RUN ln -sf /bin/busybox /sbin/nologin && ln -s ../proc/mounts /etc/mtab && ln -s busybox /bin/busybox-extras
LABEL created_by=test/system/build-testimage
LABEL created_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
WORKDIR /home/podman
CMD ["/bin/echo", "This container is intended for podman CI testing"]
EOF
"$WORK/bin/podman" build --progress quiet -t "$IMAGE" "$C" >/dev/null \
    || { echo "building the test image failed" >&2; exit 2; }
"$WORK/bin/podman" rmi lade-testimage-base:latest >/dev/null
export LADE_TESTIMAGE_ARCHIVE=$WORK/testimage.tar
"$WORK/bin/podman" save -o "$LADE_TESTIMAGE_ARCHIVE" "$IMAGE" || exit 2

# --- the run -------------------------------------------------------------------------
files=("$@")
[ ${#files[@]} -gt 0 ] || files=($DOCKER_FILES)
export PODMAN=$WORK/bin/podman
export PODMAN_TIMEOUT=${PODMAN_TIMEOUT:-60}
export BATS_TMPDIR=$WORK/bats-tmp
mkdir -p "$BATS_TMPDIR"

printf '%-24s %6s %6s %7s %6s\n' file passed failed skipped total
tp=0 tf=0 ts=0
for f in "${files[@]}"; do
    f=$(basename "$f" .bats)
    if ! [ -f "$T/$f.bats" ]; then echo "no $f.bats in podman's test/system" >&2; continue; fi
    tap=$OUT/$f.tap
    # Each file starts with no containers and no volumes, as in podman's own runs,
    # where each file's clean-up removes its volumes with podman's `volume rm -a -f`
    # (which Docker lacks): in Docker's forms here.
    ids=$("$PODMAN" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$PODMAN" rm -f $ids >/dev/null 2>&1
    vols=$("$PODMAN" volume ls -q 2>/dev/null)
    [ -n "$vols" ] && "$PODMAN" volume rm -f $vols >/dev/null 2>&1
    (cd "$T" && timeout --kill-after=30 1800 bats --tap "$f.bats") > "$tap" 2>&1
    ok=$(grep -c '^ok ' "$tap")
    skipped=$(grep -c '^ok .* # skip' "$tap")
    failed=$(grep -c '^not ok ' "$tap")
    passed=$((ok - skipped))
    printf '%-24s %6d %6d %7d %6d\n' "$f" "$passed" "$failed" "$skipped" $((ok + failed))
    tp=$((tp + passed)) tf=$((tf + failed)) ts=$((ts + skipped))
done
printf '%-24s %6d %6d %7d %6d\n' total "$tp" "$tf" "$ts" $((tp + tf + ts))
echo "TAP output of each file (with the failing commands): $OUT" >&2

# --- each failure classified ---------------------------------------------------------
echo "$TRANSLATE" > "$OUT/translate"
classify=(python3 "$HERE/podman-system-tests-classify.py" "$OUT")
[ "${DOC:-0}" = 1 ] && classify+=(--doc "$REPO/docs/podman-system-tests.md")
"${classify[@]}" >/dev/null
echo "every failure with its command, output and class: $OUT/failures.md" >&2
