#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the sweep's scheduler test
# (Tests/SegTTTToolTests/SlurmSweepTests.swift): munge, slurmctld and slurmd as root, every
# file under one folder, the node's CPUs as this machine's, jobs requeued on request.
#
#     bash Scripts/local_slurm.sh install   # apt-get install slurm-wlm munge (Debian; as root)
#     bash Scripts/local_slurm.sh start     # prints SLURM_CONF=...; export it for sbatch etc.
#     bash Scripts/local_slurm.sh stop
#
# DIR (default /tmp/segttt-slurm) holds slurm.conf, the daemons' state and logs.
set -euo pipefail
dir=${DIR:-/tmp/segttt-slurm}
conf=$dir/slurm.conf
stop() {
  for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  rm -f "$dir/slurmd.pid" "$dir/slurmctld.pid"
}
case "${1:-}" in
install)
  command -v slurmctld >/dev/null && command -v munged >/dev/null && exit 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  ;;
start)
  [ "$(id -u)" = 0 ] || { echo "local_slurm.sh start: run as root (the daemons run as root here)" >&2; exit 1; }
  stop
  sleep 1
  mkdir -p "$dir/state" "$dir/spool" "$dir/log" /run/munge /etc/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || munged --force 2>/dev/null
  host=$(hostname -s)
  cat >"$conf" <<CONF
ClusterName=segttt
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdSpoolDir=$dir/spool
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SchedulerParameters=sched_interval=1
MessageTimeout=30
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$conf
  slurmctld -c
  slurmd
  for _ in $(seq 60); do
    sinfo -h -o %t 2>/dev/null | grep -qx idle && { echo "SLURM_CONF=$conf"; exit 0; }
    sleep 1
  done
  echo "local_slurm.sh: the node did not come up; see $dir/log" >&2
  exit 1
  ;;
stop)
  stop
  ;;
*)
  echo "usage: bash Scripts/local_slurm.sh install|start|stop" >&2
  exit 64
  ;;
esac
