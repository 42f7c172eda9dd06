#!/usr/bin/env bash
# Data-parallel validation on this host: the real coordinator with 1 vs 2 spawned workers (1
# thread each, OPENBLAS_NUM_THREADS=1), validating VALID_SIZE pairs of CONFIG after every one of
# STEPS steps. Time per validation = valid.jsonl `seconds` (from the validation orders to the last
# unit's result, as the coordinator sees it), median over the run's validations; runs alternate
# 1, 2, 1, 2, ... REPEATS times each, and the ratio of the medians is printed (the issue's bar:
# 2 workers at most 0.6x the time of 1). The validation figures of the 1- and 2-worker runs are
# also compared: they must be bit-identical (the 1-worker run accumulates 2 micro-batches a step,
# so both runs train the same global batch and hold the same weights at every validation).
# Usage: Scripts/bench/validation_scaling.sh [CONFIG] [VALID_SIZE] [STEPS] [REPEATS]   (default: copy 4000 4 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${1:-copy}; VALID=${2:-4000}; STEPS=${3:-4}; REPEATS=${4:-3}
[ -f "$CONFIG" ] || CONFIG="configs/$CONFIG.json"
[ -x .build/release/coordinator ] || swift build -c release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for w in 1 2; do
  python3 - "$CONFIG" "$work/config-$w.json" "$VALID" "$((2 / w))" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = c["training"]
t["valid_size"] = int(sys.argv[3]); t["validate_every"] = 1; t["checkpoint_every"] = 100000; t["log_every"] = 1
t["accumulation_steps"] = int(sys.argv[4])
json.dump(c, open(sys.argv[2], "w"))
PY
done
run() {  # workers repeat
  local dir="$work/run-$1-$2"
  .build/release/coordinator --config "$work/config-$1.json" --workers "$1" --spawn-local --worker-threads 1 --threads 1 \
    --bind "tcp://127.0.0.1:$((5750 + $1))" --run-dir "$dir" --max-steps "$STEPS" > "$dir.log" 2>&1 \
    || { echo "run with $1 worker(s) failed; log:"; tail -20 "$dir.log"; exit 1; }
  python3 - "$dir/valid.jsonl" "$1" "$2" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({"workers": int(sys.argv[2]), "repeat": int(sys.argv[3]), "validations": len(rows),
                  "median_seconds": round(statistics.median(r["seconds"] for r in rows), 4),
                  "seconds": [round(r["seconds"], 4) for r in rows]}))
PY
}
for r in $(seq 1 "$REPEATS"); do run 1 "$r"; run 2 "$r"; done | tee "$work/results"
python3 - "$work" "$REPEATS" <<'PY'
import json, statistics, sys, glob
work, repeats = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(work + "/results")]
med = {w: statistics.median(r["median_seconds"] for r in rows if r["workers"] == w) for w in (1, 2)}
def figures(path):
    out = []
    for l in open(path):
        o = json.loads(l); o.pop("seconds"); out.append(json.dumps(o, sort_keys=True))
    return out
ref = figures(f"{work}/run-1-1/valid.jsonl")
same = all(figures(p) == ref for p in glob.glob(f"{work}/run-*/valid.jsonl"))
print(f"validation seconds, median of {repeats} alternating runs: 1 worker {med[1]:.3f}, 2 workers {med[2]:.3f}, "
      f"ratio {med[2] / med[1]:.3f}; figures bit-identical across runs: {'yes' if same else 'NO'}")
sys.exit(0 if same else 1)
PY
