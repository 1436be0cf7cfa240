#!/usr/bin/env bash
# How often does mmJSD's dSprites image content read shape? More seeds of the committed repro
# settings on the validation split (benchmarks/fidelity.py runs with MMJSD_HOLDOUT=val), on the
# bf16 path and on fp32. One run at a time, one thread, so the other core stays free.
#   nohup bash benchmarks/selection/solution_kinds.sh > fidelity_runs/solution_kinds.log 2>&1 &
# Run it from a worktree at a fixed commit (git worktree add ../lab-COMMIT COMMIT): the runs then
# import that checkout's code, not a working tree being edited.
# Records land in fidelity_runs/results.jsonl (names S-<precision>-s<seed>).
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-$PWD/.venv}   # e.g. the main checkout's .venv
export PATH="$VENV/bin:$PATH" PYTHONPATH="$PWD/src"   # this checkout's code, whichever venv
runs=${RUNS:-"bf16:3 bf16:4 fp32:0 bf16:5 fp32:1 bf16:6 fp32:2"}
python benchmarks/fidelity.py --name S-prepare --scale repro --dataset dsprites --models mmjsd --prepare-only
for run in $runs; do
    precision=${run%%:*}; seed=${run##*:}
    python benchmarks/fidelity.py --name "S-$precision-s$seed" --scale repro --dataset dsprites --models mmjsd \
        --seed "$seed" --set "precision.cpu=$precision"
done
