#!/usr/bin/env bash
# Starts a multi-host training over ssh from a hostfile.
#
# Usage: cluster/launch.sh HOSTFILE CONFIG [coordinator options...]
# HOSTFILE: one host per line ("user@host" or "host", optional " threads=N"); the first line is the
# coordinator host, every other line runs one worker. Every host needs this repository at the same
# path ($REPO, default: this checkout's absolute path) built with `swift build -c release`, and
# passwordless ssh from here. The coordinator listens on tcp://0.0.0.0:${PORT:-5555}; workers
# connect to the coordinator host's name as written in the hostfile (set COORD_ADDR to override).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
HOSTFILE=$1; CONFIG=$2; shift 2
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
PORT=${PORT:-5555}
mapfile -t LINES < <(grep -v '^\s*#' "$HOSTFILE" | sed '/^\s*$/d')
[ ${#LINES[@]} -ge 2 ] || { echo "launch: the hostfile needs a coordinator line and at least one worker line" >&2; exit 2; }
host_of() { echo "$1" | awk '{print $1}'; }
threads_of() { echo "$1" | sed -n 's/.*threads=\([0-9]*\).*/\1/p'; }
COORD_HOST=$(host_of "${LINES[0]}")
COORD_ADDR=${COORD_ADDR:-${COORD_HOST#*@}}
WORKERS=$(( ${#LINES[@]} - 1 ))
PIDS=()
cleanup() { for pid in "${PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

echo "launch: coordinator on $COORD_HOST, $WORKERS worker(s), tcp://$COORD_ADDR:$PORT"
ssh "$COORD_HOST" "cd '$REPO' && .build/release/coordinator --config '$CONFIG' --workers $WORKERS --bind tcp://0.0.0.0:$PORT $*" &
COORD=$!
PIDS+=($COORD)
sleep 2
for line in "${LINES[@]:1}"; do
  h=$(host_of "$line"); t=$(threads_of "$line"); t=${t:-1}
  ssh "$h" "cd '$REPO' && OPENBLAS_NUM_THREADS=1 .build/release/worker --coordinator tcp://$COORD_ADDR:$PORT --threads $t --name '${h#*@}'" &
  PIDS+=($!)
done
wait "$COORD"
