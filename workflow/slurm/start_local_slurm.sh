#!/usr/bin/env bash
# A single-node SLURM on this machine, from Debian's packages (slurm-wlm, munge), for
# tests/test_slurm.py and for trying profiles/slurm-cpu without a cluster (docs/USAGE.md).
#
#   sudo workflow/slurm/start_local_slurm.sh     # install if missing, configure, start, wait for idle
#   sudo workflow/slurm/stop_local_slurm.sh      # stop the daemons (packages and state stay)
#
# Idempotent: a second call with the daemons running and the same machine changes nothing.
# The node is this host: its CPUs from nproc, RealMemory 90 % of MemTotal (a value above what
# slurmd measures drains the node). No accounting database (no slurmdbd): `sacct` finds nothing,
# so the profiles query job states with squeue and MinJobAge keeps finished jobs visible for an hour.
#
# Exit status: 0 the node is idle; 2 not root; 3 apt-get failed (no network or no Debian
# archive); 4 an /etc/slurm/slurm.conf this script did not write is present; 1 anything else.
# Every failure prints one line starting "start_local_slurm: error:".
set -euo pipefail

MARK="# written by mmjsd workflow/slurm/start_local_slurm.sh"
CONF=/etc/slurm/slurm.conf
LOG=/var/log/mmjsd-local-slurm-install.log
fail() { local code=$1; shift; echo "start_local_slurm: error: $*" >&2; exit "$code"; }

[ "$(id -u)" -eq 0 ] || fail 2 "must run as root (installs slurm-wlm and munge, writes /etc/munge and /etc/slurm, starts daemons)"

# 1. Packages (about 25 s on first use).
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
   || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || fail 3 "slurm-wlm/munge are not installed and apt-get is missing (not a Debian system)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q slurm-wlm munge >"$LOG" 2>&1; then
        # stale or missing package lists: refresh once and retry
        { apt-get update -q && apt-get install -y -q slurm-wlm munge; } >>"$LOG" 2>&1 \
            || fail 3 "apt-get install slurm-wlm munge failed (no network or no Debian archive?): see $LOG"
    fi
fi

# 2. munge: a 1 KiB key, owner munge, mode 400; munged runs as munge.
if [ ! -s /etc/munge/munge.key ]; then
    install -d -o munge -g munge -m 0700 /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 || fail 1 "munged did not start (see /var/log/munge/munged.log)"
fi

# 3. slurm.conf for this one host.
host=$(hostname -s)
cpus=$(nproc --all)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
if [ -e "$CONF" ] && ! head -n 1 "$CONF" | grep -qxF "$MARK"; then
    fail 4 "$CONF exists and was not written by this script: not touching a real cluster's configuration"
fi
new=$(mktemp)
cat >"$new" <<EOF
$MARK
# A single-node cluster on $host for tests (tests/test_slurm.py). No accounting database.
ClusterName=mmjsd-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
# finished jobs stay visible to squeue/scontrol for an hour (the executor's status query)
MinJobAge=3600
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
install -d /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! cmp -s "$new" "$CONF"; then
    # a new or changed node definition needs fresh daemons
    if alive /run/slurmctld.pid || alive /run/slurmd.pid; then
        "$(dirname "$0")/stop_local_slurm.sh" --keep-munge >/dev/null
    fi
    install -m 0644 "$new" "$CONF"
fi
rm -f "$new"

# 4. Daemons.
alive /run/slurmctld.pid || slurmctld || fail 1 "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
alive /run/slurmd.pid || slurmd || fail 1 "slurmd did not start (see /var/log/slurm/slurmd.log)"

# 5. Wait until the node takes jobs.
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in idle|mixed|allocated) break ;; esac
    case "$state" in down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;; esac
    sleep 1
done
case "$state" in
    idle|mixed|allocated) echo "start_local_slurm: $(sinfo -V): node $host $state, $cpus CPUs, RealMemory=$mem_mb MB, partition local" ;;
    *) fail 1 "node $host is '${state:-unknown}' after 60 s, not idle: $(sinfo -h -R 2>/dev/null | head -n 1) (logs in /var/log/slurm)" ;;
esac
