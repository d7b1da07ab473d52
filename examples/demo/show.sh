#!/bin/sh
# The demo's entrypoint: what the image holds, and the sandbox as seen from inside.
cat "$APP_HOME/greeting.txt"
echo "  pid:        $$ (1: the container has its own PID namespace)"
echo "  hostname:   $(hostname)"
echo "  user:       $(id)"
echo "  processes:  $(ls -d /proc/[0-9]* | wc -l) visible"
echo "  network:    $(ls /sys/class/net | tr '\n' ' ')"
echo "  files:      $(ls "$APP_HOME" | tr '\n' ' ')"
echo "  motd lines: $(cat "$APP_HOME/motd-lines"), checksum $(cut -c1-16 "$APP_HOME/SHA256SUMS")..."
if [ "$1" = "--motd" ]; then
    echo
    cat "$APP_HOME/motd.txt"
fi
