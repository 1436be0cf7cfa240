#!/usr/bin/env bash
# Stop the single-node SLURM that start_local_slurm.sh started: slurmd, slurmctld, then munged
# (unless --keep-munge). Packages, the munge key and slurm.conf stay, so a later start is quick.
# Stops only daemons recorded in their pid files; does nothing when they are not running.
set -euo pipefail

fail() { echo "stop_local_slurm: error: $*" >&2; exit "${2:-1}"; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (stops the SLURM and munge daemons)" 2

stop_pidfile() {   # stop_pidfile NAME PIDFILE: TERM the recorded process, wait up to 20 s
    local name=$1 file=$2 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && fail "$name (pid $pid) did not stop within 20 s"
        echo "stop_local_slurm: stopped $name (pid $pid)"
    fi
    rm -f "$file"
}

stop_pidfile slurmd /run/slurmd.pid
stop_pidfile slurmctld /run/slurmctld.pid
if [ "${1:-}" != "--keep-munge" ]; then
    stop_pidfile munged /run/munge/munged.pid
fi
