#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munge + slurmctld + slurmd on localhost), for the
# tests of the cluster executor. Needs root and Debian's slurm-wlm and munge packages
# (`install` gets them). Its configuration and state live in $HYDRAMIX_SLURM_DIR
# (default /tmp/hydramix-slurm); /etc/slurm is left alone. Clients find it through SLURM_CONF.
#
#   scripts/slurm_cluster.sh install   # apt-get the packages (once)
#   scripts/slurm_cluster.sh start     # start it if not running; prints `export SLURM_CONF=...`
#   scripts/slurm_cluster.sh stop
#   scripts/slurm_cluster.sh status
set -euo pipefail
dir="${HYDRAMIX_SLURM_DIR:-/tmp/hydramix-slurm}"
conf="$dir/slurm.conf"
export SLURM_CONF="$conf"

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "installing Slurm needs root (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

running() { scontrol ping 2>/dev/null | grep -q "is UP" && sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; }

start() {
  command -v slurmctld >/dev/null || { echo "Slurm is not installed: run $0 install (as root)" >&2; exit 1; }
  if [ -f "$conf" ] && running; then echo "export SLURM_CONF=$conf"; return 0; fi
  mkdir -p "$dir/state" "$dir/spool"
  local host cpus memory
  host="$(hostname -s)"
  cpus="$(nproc)"
  memory="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
  cat > "$conf" <<EOF
ClusterName=hydramix
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=2048
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
MinJobAge=30
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
    [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
    runuser -u munge -- munged || munged --force
  fi
  pkill -x slurmctld 2>/dev/null || true
  pkill -x slurmd 2>/dev/null || true
  sleep 0.5
  slurmctld -f "$conf" -c  # -c: a clean start, no jobs from an earlier run
  slurmd -f "$conf"
  for _ in $(seq 60); do
    if running; then echo "export SLURM_CONF=$conf"; return 0; fi
    sleep 0.5
  done
  echo "Slurm did not come up; logs:" >&2
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  exit 1
}

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if running; then sinfo; else echo "not running"; exit 1; fi ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
