#!/usr/bin/env bash
# Float16 storage options on one replica: peak RSS and step time of `transformer bench train` for
# plain Float32, --float16 activations, --float16 parameters and both, run one after the other
# (never concurrently: peak RSS and step time would disturb each other).
#
# Usage: Scripts/bench/float16_memory.sh [CONFIG] [extra bench options]
#   default: base --batch 64 --src-len 64 --tgt-len 64 --threads 2 --steps 3
# Environment: TRANSFORMER (.build/release/transformer; built with `swift build -c release
#              --product transformer` if missing), WARMUP (1).
# Prints every JSON line, then one summary line per variant relative to plain.
set -euo pipefail
cd "$(dirname "$0")/../.."
config=${1:-base}
shift || true
extra=("$@")
if [[ ${#extra[@]} -eq 0 ]]; then extra=(--batch 64 --src-len 64 --tgt-len 64 --threads 2 --steps 3); fi
transformer=${TRANSFORMER:-.build/release/transformer}
if [[ ! -x $transformer ]]; then
    echo "building $transformer ..." >&2
    swift build -c release --product transformer
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for variant in none activations parameters parameters,activations; do
    line=$("$transformer" bench train --config "$config" --warmup "${WARMUP:-1}" "${extra[@]}" --float16 "$variant")
    echo "$line"
    echo "$variant $line" >>"$out"
done

# Summary: peak RSS and median step time relative to the plain (none) run.
python3 - "$out" <<'PY'
import json, sys
rows = [(l.split(" ", 1)[0], json.loads(l.split(" ", 1)[1])) for l in open(sys.argv[1])]
plain = rows[0][1]
for name, r in rows:
    print(f"{name:24s} peak_rss {r['peak_rss_bytes'] / 1e9:6.2f} GB ({r['peak_rss_bytes'] / plain['peak_rss_bytes'] - 1:+.1%})"
          f"  step {r['step_seconds_median']:6.2f} s ({r['step_seconds_median'] / plain['step_seconds_median'] - 1:+.1%})"
          f"  activations {r['activation_bytes'] / 1e9:5.2f} GB  replica parameters {r['replica_parameter_bytes'] / 1e6:6.1f} MB")
PY
