#!/usr/bin/env bash
# Proves cluster/slurm/train.sbatch on this host: a real one-node Slurm cluster (munged, slurmctld,
# slurmd from Debian's slurm-wlm and munge), a 2-task training job of the copy task, and its
# summary.json checked. With the requeue part, a second job is requeued mid-run (`scontrol requeue`)
# and must come back, resume from the checkpoint it wrote on SIGTERM, and finish.
#
# Usage (root): cluster/slurm/selftest.sh [--mode basic|requeue|both|timelimit|all] [--max-steps N] [--keep]
#   --mode       basic: one job; requeue: the requeue job only; both (default): basic and requeue;
#                timelimit: a job with a 2-minute limit that checkpoints and requeues itself at the
#                USR1 warning until done (about 4 more minutes); all: the three
#   --max-steps  steps of the basic job (default 150); the requeue job runs 2x, the time-limit one 3x
#   --keep       keep the temporary directory (logs, slurm.conf, run directories) even on PASS
# Installs slurm-wlm, munge and jq with apt-get when missing (nothing else is changed on the host:
# configs, keys, state, logs and pid files live in a temporary directory under /tmp; every daemon it
# starts is stopped on exit). The executables come from .build/release (built with
# `swift build -c release` if missing; BIN=DIR uses other ones). Everything stays on this host (slurmd at 127.0.0.1).
# It prints "selftest: PASS ..." and exits 0, or "selftest: FAIL ..." and exits 1.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MODE=both MAX_STEPS=150 KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) MODE=$2; shift 2 ;;
    --max-steps) MAX_STEPS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "selftest: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$MODE" in basic|requeue|both|timelimit|all) ;; *) echo "selftest: --mode basic, requeue, both, timelimit or all" >&2; exit 2 ;; esac
[[ $MAX_STEPS =~ ^[0-9]+$ ]] && [ "$MAX_STEPS" -ge 20 ] || { echo "selftest: --max-steps must be a number >= 20" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "selftest: needs root (apt-get, munged, slurmd)" >&2; exit 2; }

log() { echo "selftest: $*"; }
START=$(date +%s)
T="" FAILED=1
# Daemon pid files, stopped in reverse order on exit.
PIDFILES=()

stop_pidfile() {   # pidfile name: TERM, wait up to 20 s, then KILL
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  log "$2 (pid $pid) did not stop on SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  set +e
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ] && [ -n "${JOBS:-}" ]; then
    # shellcheck disable=SC2086
    scancel $JOBS 2>/dev/null
    for _ in $(seq 1 60); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
  fi
  for ((i = ${#PIDFILES[@]} - 1; i >= 0; i--)); do stop_pidfile "${PIDFILES[$i]%%:*}" "${PIDFILES[$i]#*:}"; done
  if [ -n "$T" ]; then
    if [ "$FAILED" = 0 ] && [ "$KEEP" = 0 ]; then rm -rf "$T"; else log "kept $T (logs: $T/log, job output: $T/job-*.out)"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Packages (idempotent: apt-get only when a command is missing).
need=()
for c in munged slurmctld slurmd sbatch jq; do command -v "$c" >/dev/null || need+=("$c"); done
if [ ${#need[@]} -gt 0 ]; then
  log "installing slurm-wlm munge jq (missing: ${need[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends slurm-wlm munge jq >/dev/null
fi
log "$(slurmctld -V), munge $(munged -V 2>&1 | awk '{print $2; exit}')"

# 2. The executables.
BIN=${BIN:-$REPO/.build/release}
if ! [ -x "$BIN/coordinator" ] || ! [ -x "$BIN/worker" ] || ! [ -x "$BIN/transformer" ]; then
  log "building the release executables (swift build -c release)"
  (cd "$REPO" && swift build -c release >/dev/null)
  BIN=$REPO/.build/release
fi

# 3. munged with its own key, socket and state under a fresh temporary directory.
T=$(mktemp -d /tmp/slurm-selftest.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/munge" "$T/log" "$T/state" "$T/spool"
chmod 700 "$T/munge"
head -c 1024 /dev/urandom > "$T/munge/munge.key"
chmod 400 "$T/munge/munge.key"
SOCKET=$T/munge/munge.socket
munged --force --key-file "$T/munge/munge.key" --socket "$SOCKET" --pid-file "$T/munge/munged.pid" \
  --seed-file "$T/munge/munged.seed" --log-file "$T/log/munged.log"
PIDFILES+=("$T/munge/munged.pid:munged")
munge -n -S "$SOCKET" | unmunge -S "$SOCKET" >/dev/null || { log "FAIL: munged does not answer on $SOCKET"; exit 1; }
log "munged running (socket $SOCKET)"

# 4. slurm.conf for a one-node cluster: this host, its CPUs and memory as slurmd detects them.
NODE=$(hostname -s)
detected=$(slurmd -C | head -n1)
CPUS=$(echo "$detected" | tr ' ' '\n' | sed -n 's/^CPUs=//p')
MEM=$(echo "$detected" | tr ' ' '\n' | sed -n 's/^RealMemory=//p')
CPUS=${CPUS:-$(nproc)}
MEM=${MEM:-$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)}
port_free() { ! ss -Htln "sport = :$1" | grep -q .; }
CTLD_PORT="" SLURMD_PORT=""
for p in $(seq 16817 2 16899); do
  if port_free "$p" && port_free $((p + 1)); then CTLD_PORT=$p SLURMD_PORT=$((p + 1)); break; fi
done
[ -n "$CTLD_PORT" ] || { log "FAIL: no free port pair in 16817-16900"; exit 1; }
export SLURM_CONF=$T/slurm.conf
cat > "$SLURM_CONF" <<EOF
# One-node test cluster written by cluster/slurm/selftest.sh
ClusterName=selftest
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=selftest Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
log "one-node cluster: $NODE (127.0.0.1), CPUs=$CPUS RealMemory=$MEM, ports $CTLD_PORT/$SLURMD_PORT, dir $T"

# 5. The daemons (they daemonize and write their pid files).
slurmctld -f "$SLURM_CONF"
PIDFILES+=("$T/slurmctld.pid:slurmctld")
slurmd -f "$SLURM_CONF"
PIDFILES+=("$T/slurmd.pid:slurmd")
for _ in $(seq 1 30); do [ -f "$T/slurmctld.pid" ] && [ -f "$T/slurmd.pid" ] && break; sleep 1; done
state=""
for _ in $(seq 1 60); do
  state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 1
done
[ "$state" = idle ] || { log "FAIL: node $NODE is '${state:-not listed}' after 60 s (see $T/log)"; exit 1; }
log "sinfo: node $NODE idle"

# 6. Jobs. From here a failed check is counted, not fatal.
set +e
JOBS=""
submit() {   # RUN_DIR MAX_STEPS [SBATCH OPTIONS...]: prints the job id
  local run=$1 steps=$2; shift 2
  sbatch --parsable "$@" --ntasks=2 --cpus-per-task=1 --job-name=selftest --chdir="$REPO" \
    --output="$T/job-%j.out" --export=ALL,RUN_DIR="$run",MAX_STEPS="$steps",CONFIG=configs/copy.json,BIN="$BIN" \
    "$REPO/cluster/slurm/train.sbatch"
}
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }
wait_job() {   # JOBID TIMEOUT_SECONDS: waits until it left the queue; fails on timeout
  # Slurm holds a requeued job back (its begin time moves about two minutes ahead): once it is
  # pending for that reason (the old run has ended), make it eligible now so the test does not idle.
  local t0 s
  t0=$(date +%s)
  while :; do
    s=$(squeue -h -j "$1" -o '%T %r' 2>/dev/null || true)
    [ -z "$s" ] && return 0
    if [ "$s" = "PENDING BeginTime" ]; then
      log "job $1 requeued: $(squeue -h -j "$1" -o 'pending, reason %r, start %S' 2>/dev/null); scontrol update JobId=$1 StartTime=now"
      scontrol update JobId="$1" StartTime=now || log "scontrol update StartTime=now failed; waiting for Slurm's delay"
    fi
    if [ $(( $(date +%s) - t0 )) -gt "$2" ]; then log "job $1 still '$s' after $2 s"; return 1; fi
    sleep 2
  done
}
show_output() { log "----- job $1 output ($T/job-$1.out) -----"; cat "$T/job-$1.out" 2>/dev/null || true; log "----- end of job $1 output -----"; }
CHECKS_FAILED=0
check() {   # DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then log "ok: $what"; return 0; fi
  log "NOT OK: $what"; CHECKS_FAILED=$((CHECKS_FAILED + 1)); return 1
}
check_summary() {   # RUN_DIR STEPS
  local s=$1/summary.json
  check "summary.json exists" test -f "$s" || return 0
  log "summary.json: $(jq -c . "$s")"
  check "summary.json: workers 2" jq -e '.workers == 2' "$s" >/dev/null
  check "summary.json: step $2" jq -e ".step == $2" "$s" >/dev/null
  check "summary.json: sequence_accuracy reported" jq -e '.sequence_accuracy | type == "number"' "$s" >/dev/null
}
job_ok() {   # JOBID: COMPLETED with exit code 0:0
  local st ec
  st=$(job_field "$1" JobState); ec=$(job_field "$1" ExitCode)
  log "job $1: JobState=$st ExitCode=$ec Restarts=$(job_field "$1" Restarts)"
  [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ]
}

if [ "$MODE" = basic ] || [ "$MODE" = both ] || [ "$MODE" = all ]; then
  RUN=$T/run-basic
  JOB=$(submit "$RUN" "$MAX_STEPS"); JOBS="$JOBS $JOB"
  log "submitted job $JOB: 2 worker tasks x 1 CPU, copy task, $MAX_STEPS steps, run dir $RUN"
  wait_job "$JOB" 900 || CHECKS_FAILED=$((CHECKS_FAILED + 1))
  show_output "$JOB"
  check "job $JOB completed with exit code 0" job_ok "$JOB"
  check "both workers joined" grep -q 'joined as rank 1 (2/2' "$T/job-$JOB.out"
  check "worker names from SLURM_PROCID" grep -q 'worker task-1@' "$T/job-$JOB.out"
  check_summary "$RUN" "$MAX_STEPS"
fi

if [ "$MODE" = requeue ] || [ "$MODE" = both ] || [ "$MODE" = all ]; then
  RUN=$T/run-requeue
  STEPS=$((2 * MAX_STEPS))
  JOB=$(submit "$RUN" "$STEPS"); JOBS="$JOBS $JOB"
  log "submitted job $JOB: $STEPS steps, to be requeued mid-run; run dir $RUN"
  # Requeue once the run is under way, between the periodic checkpoints (copy: every 200 steps).
  t0=$(date +%s) step=0
  while [ "$step" -lt 30 ]; do
    step=$(grep -o 'step [0-9]*/' "$T/job-$JOB.out" 2>/dev/null | tail -n1 | tr -dc 0-9 || true); step=${step:-0}
    if [ $(( $(date +%s) - t0 )) -gt 600 ] || [ -z "$(squeue -h -j "$JOB" -o %T 2>/dev/null)" ]; then break; fi
    sleep 1
  done
  log "job $JOB at step $step: scontrol requeue $JOB"
  scontrol requeue "$JOB"
  wait_job "$JOB" 900 || CHECKS_FAILED=$((CHECKS_FAILED + 1))
  show_output "$JOB"
  out=$T/job-$JOB.out
  check "job $JOB completed with exit code 0 after its requeue" job_ok "$JOB"
  check "Slurm counted one restart" test "$(job_field "$JOB" Restarts)" = 1
  check "the coordinator got the stop request" grep -q 'stop requested' "$out"
  stopped=$(sed -n 's/.*stopped at step \([0-9]*\);.*/\1/p' "$out" | head -n1)
  check "the coordinator checkpointed at its stop (step ${stopped:-?})" test -n "$stopped"
  check "the requeued job ran with --resume (restart 1)" grep -q 'restart 1)' "$out"
  check "it resumed from the stop checkpoint" grep -q "resumed from .*step-0*${stopped:-x} at step ${stopped:-x}" "$out"
  check_summary "$RUN" "$STEPS"
fi

if [ "$MODE" = timelimit ] || [ "$MODE" = all ]; then
  # A 2-minute limit with USR1 70 s before it (Slurm checks limits about every 30 s): each run
  # trains until the warning, checkpoints, requeues itself; the last run finishes.
  RUN=$T/run-timelimit
  STEPS=$((3 * MAX_STEPS))
  JOB=$(submit "$RUN" "$STEPS" --time=2 --signal=B:USR1@70); JOBS="$JOBS $JOB"
  log "submitted job $JOB: $STEPS steps, --time=2 --signal=B:USR1@70; run dir $RUN"
  wait_job "$JOB" 1200 || CHECKS_FAILED=$((CHECKS_FAILED + 1))
  show_output "$JOB"
  out=$T/job-$JOB.out
  restarts=$(job_field "$JOB" Restarts)
  check "job $JOB completed with exit code 0" job_ok "$JOB"
  check "it was requeued at its time limit ($restarts restart(s))" test "${restarts:-0}" -ge 1
  check "the script asked the coordinator to stop at the warning" grep -q 'time limit near' "$out"
  check "the script requeued the job after the checkpoint" grep -q 'checkpoint written; requeueing job' "$out"
  check "the run resumed" grep -q 'resumed from .*step-' "$out"
  check "no run hit the time limit itself" bash -c "! grep -q 'DUE TO TIME LIMIT' '$out'"
  check_summary "$RUN" "$STEPS"
fi

took=$(( $(date +%s) - START ))
if [ "$CHECKS_FAILED" = 0 ]; then
  FAILED=0
  log "PASS (mode $MODE, $took s)"
  exit 0
fi
log "FAIL: $CHECKS_FAILED check(s) failed (mode $MODE, $took s)"
exit 1
