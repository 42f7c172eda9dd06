#!/usr/bin/env bash
# Starts a multi-host training over ssh from a hostfile, authenticated and encrypted with CURVE.
#
# Usage: cluster/launch.sh HOSTFILE CONFIG [coordinator options...]
# HOSTFILE: one host per line ("user@host" or "host", optional " threads=N"); the first line is the
# coordinator host, every other line runs one worker. Every host needs this repository at the same
# path ($REPO, default: this checkout's absolute path) built with `swift build -c release`, and
# passwordless ssh from here. The coordinator listens on tcp://0.0.0.0:${PORT:-5555}; workers
# connect to the coordinator host's name as written in the hostfile (set COORD_ADDR to override).
# Keys: made here once with `transformer keygen` in $KEYS (default ~/.swift-transformer/cluster-keys;
# existing keys are reused), then copied with scp to ~/.swift-transformer/keys on each host: the
# coordinator gets its secret and the workers' public keys, each worker its secret and the
# coordinator's public key. INSECURE=1 skips CURVE (the coordinator then runs with --insecure).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
HOSTFILE=$1; CONFIG=$2; shift 2
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
PORT=${PORT:-5555}
KEYS=${KEYS:-$HOME/.swift-transformer/cluster-keys}
REMOTE_KEYS='.swift-transformer/keys'   # relative to the remote home directory
mapfile -t LINES < <(grep -v '^\s*#' "$HOSTFILE" | sed '/^\s*$/d')
[ ${#LINES[@]} -ge 2 ] || { echo "launch: the hostfile needs a coordinator line and at least one worker line" >&2; exit 2; }
host_of() { echo "$1" | awk '{print $1}'; }
threads_of() { echo "$1" | sed -n 's/.*threads=\([0-9]*\).*/\1/p'; }
key_name() { local h=${1#*@}; echo "${h//[^A-Za-z0-9._-]/_}"; }   # a host's key file name
COORD_HOST=$(host_of "${LINES[0]}")
COORD_ADDR=${COORD_ADDR:-${COORD_HOST#*@}}
WORKERS=$(( ${#LINES[@]} - 1 ))
PIDS=()
cleanup() { for pid in "${PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

COORD_SECURITY=(--insecure)
WORKER_SECURITY=()
MODE="INSECURE=1: no CURVE, anyone who reaches the port can join"
if [ "${INSECURE:-0}" != 1 ]; then
  TRANSFORMER="$REPO/.build/release/transformer"
  [ -x "$TRANSFORMER" ] || { echo "launch: $TRANSFORMER not built (swift build -c release)" >&2; exit 2; }
  mkdir -p -m 700 "$KEYS/workers"
  # keygen never overwrites: make only the keys that are missing.
  [ -f "$KEYS/coordinator.secret" ] || "$TRANSFORMER" keygen --output "$KEYS/coordinator"
  for line in "${LINES[@]:1}"; do
    n=$(key_name "$(host_of "$line")")
    [ -f "$KEYS/workers/$n.secret" ] || "$TRANSFORMER" keygen --output "$KEYS/workers/$n"
  done
  # The coordinator: its secret and every worker's public key (the allow list is that directory).
  ssh "$COORD_HOST" "mkdir -p -m 700 $REMOTE_KEYS/allowed && rm -f $REMOTE_KEYS/allowed/*.public"
  scp -pq "$KEYS/coordinator.secret" "$COORD_HOST:$REMOTE_KEYS/coordinator.secret"
  scp -pq "$KEYS"/workers/*.public "$COORD_HOST:$REMOTE_KEYS/allowed/"
  # Each worker: its own secret and the coordinator's public key (scp -p keeps the 0600 mode).
  for line in "${LINES[@]:1}"; do
    h=$(host_of "$line"); n=$(key_name "$h")
    ssh "$h" "mkdir -p -m 700 $REMOTE_KEYS"
    scp -pq "$KEYS/workers/$n.secret" "$h:$REMOTE_KEYS/worker.secret"
    scp -pq "$KEYS/coordinator.public" "$h:$REMOTE_KEYS/coordinator.public"
  done
  COORD_SECURITY=(--curve-secret "\$HOME/$REMOTE_KEYS/coordinator.secret" --allow-workers "\$HOME/$REMOTE_KEYS/allowed")
  MODE="CURVE keys from $KEYS"
  WORKER_SECURITY=(--curve-secret "\$HOME/$REMOTE_KEYS/worker.secret" --coordinator-public "\$HOME/$REMOTE_KEYS/coordinator.public")
fi

echo "launch: coordinator on $COORD_HOST, $WORKERS worker(s), tcp://$COORD_ADDR:$PORT ($MODE)"
ssh "$COORD_HOST" "cd '$REPO' && .build/release/coordinator --config '$CONFIG' --workers $WORKERS --bind tcp://0.0.0.0:$PORT ${COORD_SECURITY[*]} $*" &
COORD=$!
PIDS+=($COORD)
sleep 2
for line in "${LINES[@]:1}"; do
  h=$(host_of "$line"); t=$(threads_of "$line"); t=${t:-1}
  ssh "$h" "cd '$REPO' && OPENBLAS_NUM_THREADS=1 .build/release/worker --coordinator tcp://$COORD_ADDR:$PORT --threads $t --name '${h#*@}' ${WORKER_SECURITY[*]:-}" &
  PIDS+=($!)
done
wait "$COORD"
