#!/usr/bin/env bash
# A real one-node SLURM cluster, with accounting (slurmdbd + MariaDB) so that `sacct` works, on this
# Debian machine. For the SLURM tests and for trying the SLURM profile before using a real cluster.
#
#   scripts/slurm/cluster.sh up      install missing Debian packages, start the cluster (or reuse the one
#                                    this script started before) and wait until its node is idle
#   scripts/slurm/cluster.sh down    cancel its jobs and stop exactly the daemons it started (pid files)
#   scripts/slurm/cluster.sh status  list its daemons; exit status 0 only when all of them run
#
# Needs root. State, logs, pid files and configuration live under $SLURM_LOCAL_DIR (default
# /tmp/dreamer-slurm). The one thing outside it is the link /etc/slurm/slurm.conf: client commands read
# that path, and so does the srun that the Snakemake SLURM plugin runs inside every job, because the
# plugin clears SLURM_* variables (SLURM_CONF included) before it.
set -euo pipefail

ROOT=${SLURM_LOCAL_DIR:-/tmp/dreamer-slurm}
CLUSTER=dreamer
# MariaDB gets its own port and data folder so that a MariaDB the machine already runs is left alone.
DB_PORT=${SLURM_LOCAL_DB_PORT:-3307}
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
SYSTEM_CONF=/etc/slurm/slurm.conf
export SLURM_CONF=$ROOT/etc/slurm.conf

# Start order; `down` stops them in reverse. munged and mariadbd drop root, so their pid files lie in
# folders owned by their users.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)
declare -A PIDFILE=(
  [munged]=$ROOT/munge/munged.pid
  [mariadbd]=$ROOT/mariadb/mariadbd.pid
  [slurmdbd]=$ROOT/run/slurmdbd.pid
  [slurmctld]=$ROOT/run/slurmctld.pid
  [slurmd]=$ROOT/run/slurmd.pid
)

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# Prints the pid of one of our daemons and succeeds when it is running.
running_pid() {
  local file=${PIDFILE[$1]} pid
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

all_running() {
  local daemon
  for daemon in "${DAEMONS[@]}"; do
    running_pid "$daemon" >/dev/null || return 1
  done
}

# wait_for SECONDS WHAT COMMAND...: retry COMMAND until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what; see the logs in $ROOT/log"
    sleep 0.2
  done
}

node_idle() {
  [[ $(sinfo -h -o %t) == idle ]]
}

queue_empty() {
  [[ -z $(squeue -h -o %i) ]]
}

install_packages() {
  local package missing=()
  for package in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) == "install ok installed" ]] ||
      missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return
  command -v apt-get >/dev/null || die "needs apt-get to install ${missing[*]}"
  echo "installing ${missing[*]} (log: $ROOT/log/apt.log)"
  # A fresh machine may have no package lists yet: update once and retry.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$ROOT/log/apt.log" 2>&1 || {
    apt-get update -q >>"$ROOT/log/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$ROOT/log/apt.log" 2>&1
  } || die "apt-get install ${missing[*]} failed; see $ROOT/log/apt.log"
}

# Another SLURM on this machine would hold the same ports (6817-6819): refuse to start beside one this
# script did not start.
check_no_foreign_slurm() {
  local daemon pid ours
  for daemon in slurmdbd slurmctld slurmd; do
    ours=$(running_pid "$daemon" || true)
    for pid in $(pgrep -x "$daemon" || true); do
      [[ $pid == "$ours" ]] || die "a $daemon this script did not start is running (pid $pid); stop it first"
    done
  done
}

write_config() {
  local node memory_mb device gpus=0 gres_line=""
  # The CPU layout comes from slurmd itself; RealMemory leaves 15 % of the RAM to the OS.
  node=$(slurmd -C | grep '^NodeName=')
  memory_mb=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.85) }' /proc/meminfo)
  node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$memory_mb/" <<<"$node")
  # GPUs become a generic resource, so that jobs asking for --gpus are placed (and limited) by SLURM.
  for device in /dev/nvidia[0-9]*; do
    if [[ -e $device ]]; then gpus=$((gpus + 1)); fi
  done
  if ((gpus > 0)); then
    node+=" Gres=gpu:$gpus"
    gres_line="GresTypes=gpu"
    echo "Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" >"$ROOT/etc/gres.conf"
  fi

  cat >"$SLURM_CONF" <<EOF
# Written by scripts/slurm/cluster.sh; rewritten on every 'up'.
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$ROOT/munge/munge.socket
StateSaveLocation=$ROOT/state/slurmctld
SlurmdSpoolDir=$ROOT/state/slurmd
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
# No cgroups in these machines' containers: track job processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that asks for no memory takes the whole node and jobs run one at a time.
DefMemPerCPU=1000
# A node that went down with a previous run of this script comes back as soon as slurmd registers.
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
# Connections to slurmdbd do not read AuthInfo: they take the munge socket from here.
AccountingStoragePass=$ROOT/munge/munge.socket
JobAcctGatherType=jobacct_gather/linux
$gres_line
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

write_slurmdbd_config() {
  local password=$1
  # slurmdbd reads slurmdbd.conf beside $SLURM_CONF and refuses it unless only its user can read it.
  install -m 600 /dev/null "$ROOT/etc/slurmdbd.conf"
  cat >"$ROOT/etc/slurmdbd.conf" <<EOF
# Written by scripts/slurm/cluster.sh; rewritten on every 'up'.
AuthType=auth/munge
AuthInfo=socket=$ROOT/munge/munge.socket
DbdHost=$(hostname -s)
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=${PIDFILE[slurmdbd]}
LogFile=$ROOT/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$password
StorageLoc=slurm_acct_db
EOF
}

start_munged() {
  install -d -o munge -g munge -m 755 "$ROOT/munge"
  [[ -s $ROOT/munge/munge.key ]] || runuser -u munge -- mungekey --create --keyfile="$ROOT/munge/munge.key"
  runuser -u munge -- munged --socket="$ROOT/munge/munge.socket" --key-file="$ROOT/munge/munge.key" \
    --pid-file="${PIDFILE[munged]}" --log-file="$ROOT/munge/munged.log" --seed-file="$ROOT/munge/munged.seed"
  wait_for 20 munged running_pid munged
}

start_mariadbd() {
  local data=$ROOT/mariadb/data
  install -d -o mysql -g mysql -m 755 "$ROOT/mariadb"
  if [[ ! -d $data/mysql ]]; then
    mariadb-install-db --no-defaults --user=mysql --datadir="$data" \
      --auth-root-authentication-method=socket >"$ROOT/log/mariadb-install.log" 2>&1 ||
      die "mariadb-install-db failed; see $ROOT/log/mariadb-install.log"
  fi
  # --no-defaults keeps the machine's /etc/mysql settings (port 3306, /var/lib/mysql) out of it.
  mariadbd --no-defaults --user=mysql --datadir="$data" --bind-address=127.0.0.1 --port="$DB_PORT" \
    --skip-name-resolve --socket="$ROOT/mariadb/mariadbd.sock" --pid-file="${PIDFILE[mariadbd]}" \
    --log-error="$ROOT/mariadb/mariadbd.log" </dev/null >/dev/null 2>&1 &
  wait_for 60 mariadbd mariadb-admin --no-defaults --socket="$ROOT/mariadb/mariadbd.sock" ping
}

# A fresh password on every 'up': it only has to match between MariaDB and slurmdbd.conf.
grant_slurmdbd() {
  local password=$1
  mariadb --no-defaults --socket="$ROOT/mariadb/mariadbd.sock" -u root <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

link_system_conf() {
  if [[ -e $SYSTEM_CONF || -L $SYSTEM_CONF ]] && [[ $(readlink "$SYSTEM_CONF") != "$SLURM_CONF" ]]; then
    die "$SYSTEM_CONF exists and is not this script's; move it away to use this cluster"
  fi
  mkdir -p "$(dirname "$SYSTEM_CONF")"
  ln -sfn "$SLURM_CONF" "$SYSTEM_CONF"
}

up() {
  local start_us=${EPOCHREALTIME/./} password elapsed_ms
  [[ $EUID == 0 ]] || die "needs root (it installs packages and starts system daemons)"
  if all_running && scontrol ping >/dev/null 2>&1; then
    link_system_conf
    wait_for 60 "the node to become idle" node_idle
    echo "SLURM cluster '$CLUSTER' is already up (started by this script); export SLURM_CONF=$SLURM_CONF"
    return
  fi
  # A clean slate: stop whatever an earlier, half-finished 'up' left running.
  down >/dev/null
  mkdir -p "$ROOT"/{etc,log,run,state}
  install_packages
  check_no_foreign_slurm
  link_system_conf
  write_config
  password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  write_slurmdbd_config "$password"

  start_munged
  start_mariadbd
  grant_slurmdbd "$password"
  slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
  [[ -n $(sacctmgr -n list cluster "$CLUSTER" format=cluster) ]] ||
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  slurmctld
  wait_for 60 slurmctld scontrol ping
  slurmd
  wait_for 60 "the node to become idle" node_idle

  elapsed_ms=$(((${EPOCHREALTIME/./} - start_us) / 1000))
  printf "SLURM cluster '%s' up in %d.%01d s; state and logs in %s\n" \
    "$CLUSTER" $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100)) "$ROOT"
  echo "export SLURM_CONF=$SLURM_CONF   # or use $SYSTEM_CONF, which links to it"
}

down() {
  local daemon pid i jobs
  if running_pid slurmctld >/dev/null; then
    # Jobs run in slurmstepd processes, which outlive slurmd: cancel them first.
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      # shellcheck disable=SC2086  # one argument per job id
      scancel $jobs || true
      wait_for 90 "cancelled jobs to end" queue_empty
    fi
  fi
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    daemon=${DAEMONS[i]}
    pid=$(running_pid "$daemon") || continue
    kill "$pid"
    wait_for 30 "$daemon to stop" bash -c "! kill -0 $pid"
    echo "stopped $daemon (pid $pid)"
  done
  if [[ $(readlink "$SYSTEM_CONF" || true) == "$SLURM_CONF" ]]; then
    rm "$SYSTEM_CONF"
  fi
}

status() {
  local daemon pid code=0
  for daemon in "${DAEMONS[@]}"; do
    if pid=$(running_pid "$daemon"); then
      echo "$daemon: running (pid $pid)"
    else
      echo "$daemon: not running"
      code=3
    fi
  done
  if ((code == 0)); then
    sinfo
  fi
  return $code
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
