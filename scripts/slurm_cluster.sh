#!/usr/bin/env bash
# A single-node Slurm cluster with accounting on this machine, for the test suite (.ci/run) and for
# trying `hydra/launcher=slurm` locally. Debian/Ubuntu, as root; no systemd needed.
#
#   scripts/slurm_cluster.sh start    install what is missing (apt-get), write the config if absent,
#                                     start munged, MariaDB, slurmdbd, slurmctld, slurmd; safe to re-run
#   scripts/slurm_cluster.sh stop     cancel every job, stop the daemons (packages and config stay)
#   scripts/slurm_cluster.sh status   exit 0 when sbatch, squeue and sacct answer
#
# Partitions: `debug` (the default) and `high`; a `high` job that needs CPUs preempts (requeues) a
# `debug` job. The node offers 4 CPUs and 4 GB whatever the hardware (tiny test jobs only).
# Logs: /var/log/slurm/. Config: /etc/slurm/slurm.conf (written once; delete it to regenerate).
set -euo pipefail

PACKAGES="munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
SLURM_SERIES=22.05  # the config below is written for it (Debian 12's slurm-wlm 22.05.8)
HOST="$(hostname -s)"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
LOG=/var/log/slurm
RUN=/run/slurm
DB_SOCKET=/run/mysqld/mysqld.sock

say() { echo "slurm_cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }

alive() {  # alive PIDFILE: the process in PIDFILE is running
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...: poll COMMAND every second until it succeeds
  local limit=$1 what=$2
  local deadline=$((SECONDS + limit))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${limit}s; see $LOG/"
    sleep 1
  done
}

install_packages() {
  local missing=()
  for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed (run as root on Debian/Ubuntu with a package mirror)"
}

check_version() {
  local version
  # dpkg, not `sinfo -V`: Slurm's clients look for a config before printing their version (22.05.8-4+deb12u3)
  version="$(dpkg-query -W -f='${Version}' slurmctld)"
  case "$version" in
    "$SLURM_SERIES".*) ;;
    *) die "Slurm $version is installed but this script's config is for Slurm $SLURM_SERIES (Debian 12); install $SLURM_SERIES or adapt write_config" ;;
  esac
}

write_config() {
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG" "$RUN"
  if [ ! -f "$CONF" ]; then
    cat > "$CONF" <<EOF
# Written by scripts/slurm_cluster.sh: a single-node test cluster.
ClusterName=bench
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits out the credential lifetime (default 120 s) before it starts again.
AuthInfo=cred_expire=5
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=sched_interval=2
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=600
InactiveLimit=0
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# Preemption sends the job's --signal (submitit's USR2) at once, so submitit requeues it itself.
SlurmctldParameters=preempt_send_user_signal
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=4 RealMemory=4096 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=10
PartitionName=high Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
  fi
  if [ ! -f "$DBD_CONF" ]; then
    cat > "$DBD_CONF" <<EOF
# Written by scripts/slurm_cluster.sh: accounting in the local MariaDB, over its socket only.
DbdHost=localhost
SlurmUser=root
AuthType=auth/munge
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=bench-local
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DBD_CONF"
  fi
}

start_munge() {
  mkdir -p /run/munge
  chown munge:munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  wait_for 20 munged sh -c 'munge -n | unmunge'
}

start_mariadb() {
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  if ! mariadb-admin --socket="$DB_SOCKET" ping >/dev/null 2>&1; then
    setsid /usr/sbin/mariadbd --user=mysql --skip-networking --socket="$DB_SOCKET" \
      --pid-file=/run/mysqld/mysqld.pid >>"$LOG/mariadb.log" 2>&1 </dev/null &
  fi
  wait_for 60 MariaDB mariadb-admin --socket="$DB_SOCKET" ping
  mariadb --socket="$DB_SOCKET" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'bench-local';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

node_ready() {  # the node takes jobs; one left down or drained by an earlier unclean stop is resumed
  local state
  state="$(sinfo -h -n "$HOST" -o %t)"
  case "$state" in
    idle* | mix* | alloc*) return 0 ;;
    down* | drain* | drng* | fail*) scontrol update nodename="$HOST" state=resume ;;
  esac
  return 1
}

start_slurm() {
  alive "$RUN/slurmdbd.pid" || slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
  sacctmgr -n -P list cluster format=cluster | grep -qx bench || sacctmgr -i add cluster bench >/dev/null
  alive "$RUN/slurmctld.pid" || slurmctld -i
  wait_for 60 slurmctld scontrol ping
  alive "$RUN/slurmd.pid" || slurmd -N "$HOST"
  wait_for 60 "node $HOST" node_ready
}

status() {
  scontrol ping | grep -q UP && sinfo -h -n "$HOST" -o %t | grep -Eq '^(idle|mix|alloc)' \
    && squeue -h >/dev/null && sacct -n -X -S now-1minutes >/dev/null
}

stop_pid() {  # stop_pid PIDFILE: SIGTERM, then wait up to 30 s for the process to exit
  alive "$1" || return 0
  local pid
  pid="$(cat "$1")"
  kill "$pid"
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  if alive "$RUN/slurmctld.pid"; then
    scancel --full --user=root 2>/dev/null || true
    scancel --full $(squeue -h -o %A 2>/dev/null) 2>/dev/null || true
    for _ in $(seq 20); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 1; done
  fi
  stop_pid "$RUN/slurmd.pid"
  stop_pid "$RUN/slurmctld.pid"
  stop_pid "$RUN/slurmdbd.pid"
  mariadb-admin --socket="$DB_SOCKET" shutdown 2>/dev/null || true
  stop_pid /run/munge/munged.pid
}

[ $# -eq 1 ] || die "usage: $0 start|stop|status"
case "$1" in
  start)
    [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts daemons)"
    install_packages
    check_version
    write_config
    start_munge
    start_mariadb
    start_slurm
    say "up: partitions debug (default) and high on $HOST; logs in $LOG/"
    ;;
  stop) stop; say "stopped" ;;
  status) if status; then say "up"; else say "down"; exit 1; fi ;;
  *) die "unknown command '$1'; use start, stop or status" ;;
esac
