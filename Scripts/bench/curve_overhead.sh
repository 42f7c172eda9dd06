#!/usr/bin/env bash
# What CURVE costs: the 2-worker run of CONFIG (1 thread per worker, OPENBLAS_NUM_THREADS=1,
# workers started by hand so both modes launch the same way) with and without CURVE, alternating,
# REPEATS times; then one connection's throughput on 4 MiB frames (`transformer bench wire`).
# Throughput is target tokens over wall time from the end of step 5 to the end of step STEPS
# (metrics.jsonl `elapsed_seconds`), as in distributed_scaling.sh.
# Usage: Scripts/bench/curve_overhead.sh [CONFIG] [STEPS] [REPEATS]   (default: small 20 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-small}; STEPS=${2:-20}; REPEATS=${3:-3}
[ -f "$CONFIG" ] || CONFIG="configs/$CONFIG.json"
BIN=.build/release
[ -x "$BIN/coordinator" ] && [ -x "$BIN/worker" ] && [ -x "$BIN/transformer" ] || swift build -c release
work=$(mktemp -d)
results="$work/results.jsonl"
trap 'rm -rf "$work"' EXIT
python3 - "$CONFIG" "$work/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = c["training"]
t["accumulation_steps"] = 1; t["log_every"] = 1; t["validate_every"] = 100000; t["checkpoint_every"] = 100000
json.dump(c, open(sys.argv[2], "w"))
PY
mkdir -p "$work/keys/allowed"
for k in coordinator w0 w1; do "$BIN/transformer" keygen --output "$work/keys/$k" > /dev/null; done
cp "$work/keys/w0.public" "$work/keys/w1.public" "$work/keys/allowed/"

run() {  # mode(plain|curve) repeat
  local dir="$work/run-$1-$2" port=$((5800 + RANDOM % 1000)) coord=() w=()
  if [ "$1" = curve ]; then coord=(--curve-secret "$work/keys/coordinator.secret" --allow-workers "$work/keys/allowed"); fi
  "$BIN/coordinator" --config "$work/config.json" --workers 2 --bind "tcp://127.0.0.1:$port" --run-dir "$dir" \
    --max-steps "$STEPS" "${coord[@]}" > "$work/log-$1-$2" 2>&1 &
  local cpid=$!
  # Workers start once the coordinator listens: one that connects earlier sends its first heartbeat
  # (rank -1) before its welcome, and the coordinator refuses that (issue 11 part 1's area).
  until grep -q "coordinator listening" "$work/log-$1-$2"; do kill -0 "$cpid" || { cat "$work/log-$1-$2" >&2; exit 1; }; sleep 0.2; done
  for i in 0 1; do
    w=(); [ "$1" = curve ] && w=(--curve-secret "$work/keys/w$i.secret" --coordinator-public "$work/keys/coordinator.public")
    OPENBLAS_NUM_THREADS=1 "$BIN/worker" --coordinator "tcp://127.0.0.1:$port" --threads 1 --name "w$i" "${w[@]}" > "$work/wlog-$1-$2-$i" 2>&1 &
  done
  wait "$cpid" || { cat "$work/log-$1-$2" >&2; exit 1; }
  wait
  python3 - "$dir/metrics.jsonl" "$1" "$2" <<'PY' | tee -a "$results"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first = next(r for r in rows if r["step"] == 5); rows = [r for r in rows if r["step"] > 5]
t = sum(r["tokens"] for r in rows); wall = rows[-1]["elapsed_seconds"] - first["elapsed_seconds"]
avg = lambda k: round(sum(r[k] for r in rows) / len(rows), 4)
print(json.dumps({"mode": sys.argv[2], "repeat": int(sys.argv[3]), "tokens_per_second": round(t / wall, 1),
      "step_seconds": round(wall / len(rows), 4), "compute_seconds": avg("compute_seconds"),
      "reduce_seconds": avg("reduce_seconds"), "broadcast_seconds": avg("broadcast_seconds")}))
PY
}

for rep in $(seq 1 "$REPEATS"); do
  if [ $((rep % 2)) = 1 ]; then run plain "$rep"; run curve "$rep"; else run curve "$rep"; run plain "$rep"; fi
done
for rep in $(seq 1 "$REPEATS"); do
  "$BIN/transformer" bench wire --mebibytes 4 --frames 50 | tee -a "$work/wire.jsonl"
  "$BIN/transformer" bench wire --mebibytes 4 --frames 50 --curve | tee -a "$work/wire.jsonl"
  "$BIN/transformer" bench wire --mebibytes 2 --frames 50 --curve | tee -a "$work/wire.jsonl"
done
python3 - "$results" "$work/wire.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda m, k: statistics.median(r[k] for r in rows if r["mode"] == m)
out = {m: {"median_tokens_per_second": med(m, "tokens_per_second"), "median_step_seconds": med(m, "step_seconds")} for m in ["plain", "curve"]}
out["curve_step_slowdown"] = round(out["curve"]["median_step_seconds"] / out["plain"]["median_step_seconds"] - 1, 4)
wire = [json.loads(l) for l in open(sys.argv[2])]
for mech, size in [("NULL", 4194304), ("CURVE", 4194304), ("CURVE", 2097152)]:
    out[f"wire_{mech}_{size // 1048576}MiB_MB_per_s"] = statistics.median(w["megabytes_per_second"] for w in wire
                                                                          if w["mechanism"] == mech and w["frame_bytes"] == size)
print(json.dumps(out))
PY
