#!/usr/bin/env bash
# Usage: benchmarks/selection/image_decoder.sh SEED [SEED ...]   (records in $W/results.jsonl; docs/FIDELITY.md)
# Validation selection: dSprites image decoder, pose (+ image style 3, the repro setting) vs conv
# (no style), both models, seeds in order. Two fidelity processes at a time, one core each.
set -u
cd "$(dirname "$0")/../.."
export PATH="${MMJSD_VENV:-$PWD/.venv}/bin:$PATH"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"   # the mmjsd of this checkout, whatever venv runs it
W=${SELECTION_WORKDIR:-fidelity_runs/selection}
mkdir -p $W
for seed in "$@"; do
  python benchmarks/fidelity.py --name V-pose-s$seed --scale repro --dataset dsprites --seed $seed --workdir $W \
      > $W/V-pose-s$seed.out 2>&1 &
  A=$!
  # the second process starts once the shared classifiers exist (both would train them otherwise)
  until ls $W/shared/classifiers-*/dsprites/text.json >/dev/null 2>&1 || ! kill -0 $A 2>/dev/null; do sleep 20; done
  python benchmarks/fidelity.py --name V-conv-s$seed --scale repro --dataset dsprites --seed $seed --workdir $W \
      --set model.dsprites.image_decoder=conv --set 'model.dsprites.style_dim={img: 0, text: 0}' \
      > $W/V-conv-s$seed.out 2>&1 &
  B=$!
  wait $A $B
done
echo finished >> $W/select_decoder.done
