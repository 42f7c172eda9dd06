#!/usr/bin/env bash
# Runs a real distributed training across three network namespaces on this machine: a coordinator
# (10.77.1.1 / 10.77.2.1) and two workers (10.77.1.2, 10.77.2.2), each worker joined to the
# coordinator by its own veth pair, talking tcp:// like separate hosts on a LAN.
#
# Usage (root): cluster/netns-demo.sh [CONFIG] [--netem "rate 1gbit delay 0.2ms"] [--max-steps N] [--insecure]
# Default CONFIG is configs/copy.json. With --netem, each veth gets `tc qdisc ... netem ARGS`
# (e.g. a 1 Gbit/s LAN). Connections use CURVE with keys made for this run by `transformer keygen`
# (coordinator + one per worker, in a temporary directory), unless --insecure.
# Everything it creates (namespaces, veths, keys) is removed on exit, even on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=configs/copy.json
NETEM=""
EXTRA=()
INSECURE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --netem) NETEM="$2"; shift 2 ;;
    --max-steps) EXTRA+=(--max-steps "$2"); shift 2 ;;
    --insecure) INSECURE=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) CONFIG="$1"; shift ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "netns-demo: needs root (ip netns, veth)" >&2; exit 2; }
BIN=.build/release
[ -x "$BIN/coordinator" ] && [ -x "$BIN/worker" ] && [ -x "$BIN/transformer" ] || swift build -c release

P=st$$   # unique prefix so parallel runs and leftovers never collide
NS_C=${P}c NS_1=${P}w1 NS_2=${P}w2
RUN_DIR=${RUN_DIR:-runs/netns-demo}
PIDS=()
KEYS=$(mktemp -d)
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for ns in "$NS_C" "$NS_1" "$NS_2"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$KEYS"
}
trap cleanup EXIT INT TERM

for ns in "$NS_C" "$NS_1" "$NS_2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
for i in 1 2; do
  ns_var=NS_$i; ns=${!ns_var}
  ip link add "${P}c$i" type veth peer name "${P}w$i"
  ip link set "${P}c$i" netns "$NS_C"; ip link set "${P}w$i" netns "$ns"
  ip -n "$NS_C" addr add "10.77.$i.1/24" dev "${P}c$i"; ip -n "$NS_C" link set "${P}c$i" up
  ip -n "$ns" addr add "10.77.$i.2/24" dev "${P}w$i"; ip -n "$ns" link set "${P}w$i" up
  if [ -n "$NETEM" ]; then
    # shellcheck disable=SC2086
    if ! { ip netns exec "$NS_C" tc qdisc add dev "${P}c$i" root netem $NETEM &&
           ip netns exec "$ns" tc qdisc add dev "${P}w$i" root netem $NETEM; }; then
      echo "netns-demo: warning: tc netem is not available in this kernel (sch_netem); running without it" >&2
      NETEM=""
    fi
  fi
done
echo "netns-demo: coordinator in $NS_C (10.77.1.1, 10.77.2.1), workers in $NS_1 (10.77.1.2), $NS_2 (10.77.2.2)${NETEM:+, netem: $NETEM}"

# Keys: the coordinator's pair, and one pair per worker whose public key goes into the allow list.
COORD_SECURITY=(--insecure) W1_SECURITY=() W2_SECURITY=()
if [ "$INSECURE" != 1 ]; then
  mkdir -p "$KEYS/allowed"
  "$BIN/transformer" keygen --output "$KEYS/coordinator" >/dev/null
  for w in w1 w2; do
    "$BIN/transformer" keygen --output "$KEYS/$w" >/dev/null
    cp "$KEYS/$w.public" "$KEYS/allowed/"
  done
  COORD_SECURITY=(--curve-secret "$KEYS/coordinator.secret" --allow-workers "$KEYS/allowed")
  W1_SECURITY=(--curve-secret "$KEYS/w1.secret" --coordinator-public "$KEYS/coordinator.public")
  W2_SECURITY=(--curve-secret "$KEYS/w2.secret" --coordinator-public "$KEYS/coordinator.public")
  echo "netns-demo: CURVE on (coordinator key $(cat "$KEYS/coordinator.public"))"
else
  echo "netns-demo: --insecure: no CURVE"
fi

# One compute thread per process: three processes share this machine's cores.
ip netns exec "$NS_C" env OPENBLAS_NUM_THREADS=1 "$BIN/coordinator" --config "$CONFIG" --workers 2 \
  --bind tcp://0.0.0.0:5555 --run-dir "$RUN_DIR" --threads 1 "${COORD_SECURITY[@]}" "${EXTRA[@]}" &
PIDS+=($!)
COORD=$!
sleep 1
ip netns exec "$NS_1" env OPENBLAS_NUM_THREADS=1 "$BIN/worker" --coordinator tcp://10.77.1.1:5555 --threads 1 --name w1 "${W1_SECURITY[@]}" &
PIDS+=($!)
ip netns exec "$NS_2" env OPENBLAS_NUM_THREADS=1 "$BIN/worker" --coordinator tcp://10.77.2.1:5555 --threads 1 --name w2 "${W2_SECURITY[@]}" &
PIDS+=($!)
wait "$COORD"
status=$?
echo "netns-demo: coordinator exited with $status; summary: $RUN_DIR/summary.json"
[ -f "$RUN_DIR/summary.json" ] && cat "$RUN_DIR/summary.json"
exit $status
