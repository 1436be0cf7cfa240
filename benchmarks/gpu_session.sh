#!/usr/bin/env bash
# Everything this project measures on a GPU machine, in one go (the figures in
# docs/BENCHMARKS.md's GPU section come from this script's output).
#
#   bash benchmarks/gpu_session.sh OUT_DIR        # on a machine with CUDA, from the repo root
#   PARTS=cli EPOCHS=3 bash benchmarks/gpu_session.sh OUT_DIR   # only step 4, 3 epochs per model
#
# 1. the GPU tests (tests/test_cuda.py: train in bf16, classifiers and evaluation on CUDA);
# 2. model step throughput and peak GPU memory, fp32 and bf16 (bench_models.py);
# 3. the training loop's time split, bf16 speed-up and GPU utilisation (bench_train.py);
# 4. the real CLI at paper width on CUDA: prepare the full rendered dSprites grid, then two
#    `mmjsd train` jobs started together for one epoch each. With one GPU the second must wait
#    for the first's lock (src/mmjsd/training/gpu.py); the logs show the order. Then the classifiers and
#    the evaluation of both runs on the GPU.
# 5. (PARTS=paper, not in the default) dSprites at the paper's settings (config.yaml's top level:
#    width 1.0, batch 256, lr 0.001, pose image decoder, aligned text) on the full rendered grid,
#    EPOCHS epochs per model (default: the config's 30). Both models train at the same time on
#    the one GPU (each claims the config's 0.25 share), the classifiers beside them. A run can
#    pause (MAX_STEPS, TRAIN_DEADLINE_S) and resume in a later call (RESUME_DIR): see the step.
#    Finished runs are evaluated by `mmjsd evaluate` and aggregated into Table 1; paused ones by
#    benchmarks/diagnostics/evaluate_checkpoint.py. Results without weights go to
#    OUT/paper_results.tgz; a finished model to OUT/paper_model_MODEL.pt, a paused checkpoint
#    in 15 MiB pieces to OUT/checkpoint_MODEL.pt.partNN, with OUT/train_state.tgz (each paused
#    model's timing_MODEL.json and train_MODEL.log) sent before the scoring. The device sends back
#    at most 8 files: a paused two-model call leaves 7 (4 pieces, 2 tarballs, the caller's log).
# The device machine has torch but not every pinned package: PYTHONPATH may point at extra
# wheels installed beforehand (jsonschema for config validation).
set -uo pipefail
OUT=${1:?usage: gpu_session.sh OUT_DIR}
PARTS=${PARTS:-tests,bench,cli}   # which of the steps below to run
EPOCHS=${EPOCHS:-}                # training epochs per model in steps 4 (default 1) and 5 (default: the config's)
want() { [[ ",$PARTS," == *",$1,"* ]]; }
mkdir -p "$OUT" && OUT=$(realpath "$OUT")   # the paper step writes to it from another folder
# SRC: the package source to run (default src/). A run resumed in a later session needs the code
# that wrote its checkpoint (the run key holds a digest of the training code), e.g. a copy made by
# `git archive COMMIT src | tar x -C gpu_resume/code` and SRC=gpu_resume/code/src.
EXTRA_PATH=${PYTHONPATH:-}
export PYTHONPATH="$(realpath "${SRC:-src}")${EXTRA_PATH:+:$EXTRA_PATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
log() { echo "=== $(date +%T) $*"; }

log "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
nproc

if want tests; then
  log "GPU tests"
  $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_gpu.py 2>&1 | tail -5
fi

if want bench; then
  log "bench_models (batch 256, fp32 and bf16 rows follow config train.bf16)"
  $PY benchmarks/bench_models.py --device cuda --steps 20 --warmup 3 --json "$OUT/bench_models.json"
  log "bench_train paper scale"
  $PY benchmarks/bench_train.py --scale paper --device cuda --bf16 --steps 30 --warmup 5
  log "bench_train demo scale"
  $PY benchmarks/bench_train.py --scale demo --device cuda --bf16 --steps 30 --warmup 5
fi

if want paper; then
  # EPOCHS unset: the config's own epochs (30, the paper run). MAX_STEPS pauses both models at the
  # same optimiser step (a resumable checkpoint: equal budgets); TRAIN_DEADLINE_S sends SIGTERM
  # after that many seconds of training (the checkpoint is saved at the next step) so the call
  # ends inside the device's time. RESUME_DIR holds the pieces of earlier calls' checkpoints
  # (checkpoint_MODEL.pt.part* and train_state.tgz, as the call left them in OUT; an unpacked
  # timing_MODEL.json is read too), so one run can span several sessions.
  # SUBSET keeps that many grid rows (a CPU dry run of this step).
  log "dSprites at paper settings, full rendered grid, epochs ${EPOCHS:-from config}, trained together"
  PAPER=$(mktemp -d)
  export MODELS=${MODELS:-mmjsd mmpoe}
  $PY - "$PAPER/config.yaml" "${EPOCHS:-}" "${SUBSET:-}" <<'EOF'
import json, os, sys, yaml
raw = yaml.safe_load(open("config.yaml"))
overlay = {
    "seeds": [0], "datasets": ["dsprites"], "models": os.environ["MODELS"].split(),
    "model": {"dsprites": json.loads(os.environ.get("DSPRITES_MODEL") or "{}")},  # e.g. {"image_decoder": "conv"}
    "paths": {"data": "data", "results": "results"},
    "data": {"dsprites": {"source": "render"}},       # the device has no network: the stand-in grid
    "classifier": {"dsprites": {"epochs": 1}},        # 1 epoch of the full grid: >= 0.998 held out
}
if sys.argv[2]:
    overlay["train"] = {"dsprites": {"epochs": int(sys.argv[2])}}
if sys.argv[3]:
    overlay["data"]["dsprites"]["subset"] = int(sys.argv[3])
    # a small subset holds fewer held-out rows than the probe's 256 (the config refuses that): fit on them
    from mmjsd.config import held_out_sizes
    data = raw["data"]["dsprites"]
    held = min(held_out_sizes(int(sys.argv[3]), data["test_fraction"], data["val_fraction"]))
    overlay["eval"] = {"latent_fit_samples": min(raw["eval"]["latent_fit_samples"], held)}
raw["scales"]["gpupaper"] = overlay
yaml.safe_dump(raw, open(sys.argv[1], "w"))
EOF
  REPO=$PWD
  RESUME_DIR=${RESUME_DIR:+$(realpath "$RESUME_DIR")}   # relative to the repository root, or absolute
  RESUME_STATE=$(mktemp -d)   # timing_MODEL.json of the earlier call, unpacked from its train_state.tgz
  [ -n "${RESUME_DIR:-}" ] && cp "$RESUME_DIR"/timing_*.json "$RESUME_STATE/" 2>/dev/null
  [ -f "${RESUME_DIR:-}/train_state.tgz" ] && tar xzf "$RESUME_DIR/train_state.tgz" -C "$RESUME_STATE" --wildcards '*timing_*.json'
  (
    cd "$PAPER" || exit 1
    M="$PY -m mmjsd --config config.yaml --scale gpupaper"
    export MMJSD_GPU_LOCK_DIR="$PAPER/locks"
    time $M dsprites-render --out data/raw/dsprites/render.npz
    time $M prepare --dataset dsprites --input data/raw/dsprites/render.npz --out-dir data/processed/dsprites
    for model in $MODELS; do
      run_dir=results/runs/dsprites/$model/seed0
      if [ -n "${RESUME_DIR:-}" ] && compgen -G "$RESUME_DIR/checkpoint_$model.pt.part*" > /dev/null; then
        mkdir -p "$run_dir"
        cat "$RESUME_DIR/checkpoint_$model.pt.part"* > "$run_dir/checkpoint.pt"
        cp "$RESUME_STATE/timing_$model.json" "$run_dir/timing.json" 2>/dev/null
        echo "resuming $model from $(sha256sum "$run_dir/checkpoint.pt")"
      fi
    done
    for modality in img text; do
      $M train-classifier --dataset dsprites --modality $modality --threads 4 > "classifier_$modality.log" 2>&1 &
    done
    declare -A trainer
    for model in $MODELS; do
      ( echo "start $(date +%T)"; exec $M train --dataset dsprites --model $model --seed 0 --threads 4 ${MAX_STEPS:+--max-steps $MAX_STEPS} ) > "train_$model.log" 2>&1 &
      trainer[$model]=$!
    done
    deadline=$((SECONDS + ${TRAIN_DEADLINE_S:-1000000}))
    while (( SECONDS < deadline )); do
      alive=0; for pid in "${trainer[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      (( alive )) || break
      sleep 2
    done
    for model in $MODELS; do
      # the subshell exec'd into python, so its pid is the trainer's: SIGTERM -> checkpoint, exit
      kill -0 "${trainer[$model]}" 2>/dev/null && { echo "deadline: SIGTERM to $model"; kill -TERM "${trainer[$model]}"; }
    done
    for model in $MODELS; do wait "${trainer[$model]}"; echo "$model trained, rc=$? $(date +%T)"; done
    # the weights first: they come back even if what follows runs out of time
    TRAIN_STATE=$(mktemp -d)
    for model in $MODELS; do
      run_dir=results/runs/dsprites/$model/seed0
      if [ -f "$run_dir/model.pt" ]; then
        cp "$run_dir/model.pt" "$OUT/paper_model_$model.pt"
      elif [ -f "$run_dir/checkpoint.pt" ]; then   # files come back at most 16 MiB each
        split -b 15m -d "$run_dir/checkpoint.pt" "$OUT/checkpoint_$model.pt.part"
        sha256sum "$run_dir/checkpoint.pt"
      fi
      # and what a resume needs beside them, before the scoring that may run out of time; one
      # tarball, because the device sends back at most 8 files
      cp "$run_dir/timing.json" "$TRAIN_STATE/timing_$model.json" 2>/dev/null
      cp "train_$model.log" "$TRAIN_STATE/"
    done
    (cd "$TRAIN_STATE" && tar czf "$OUT/train_state.tgz" ./*)
    wait   # the classifiers
    for model in $MODELS; do
      if [ -f results/runs/dsprites/$model/seed0/model.pt ]; then
        $M evaluate --dataset dsprites --model $model --seed 0 --threads 4
      else
        # scored by this commit's evaluation code (the training code may be an older SRC snapshot:
        # the networks are the same, and the diagnostic needs evaluate.load_inputs)
        PYTHONPATH="$REPO/src${EXTRA_PATH:+:$EXTRA_PATH}" \
        $PY "$REPO/benchmarks/diagnostics/evaluate_checkpoint.py" --config config.yaml --scale gpupaper \
          --run results/runs/dsprites/$model/seed0 --split data/processed/dsprites/val.pt \
          --fit data/processed/dsprites/val_fit.pt --eval data/processed/dsprites/val_eval.pt \
          --img-classifier results/classifiers/dsprites/img.pt --text-classifier results/classifiers/dsprites/text.pt \
          --out results/runs/dsprites/$model/seed0/eval_paused.json
      fi
    done
    for f in classifier_img classifier_text $(printf 'train_%s ' $MODELS); do echo "--- $f"; grep -v "ETA" "$f.log" | tail -20; done
    ls results/runs/dsprites/*/seed0/model.pt > /dev/null 2>&1 && { $M aggregate; cat results/table1.md; }
    tar czf "$OUT/paper_results.tgz" --exclude='*.pt' results ./*.log config.yaml
  )
fi

want cli || { log "done"; exit 0; }

log "CLI at paper width: config with a ${EPOCHS:-1}-epoch 'gpucheck' scale"
WORK=$(mktemp -d)
$PY - "$WORK/config.yaml" "${EPOCHS:-1}" <<'EOF'
import sys, yaml
raw = yaml.safe_load(open("config.yaml"))
raw["scales"]["gpucheck"] = {
    "seeds": [0], "datasets": ["dsprites"],
    "paths": {"data": "data", "results": "results"},
    "data": {"dsprites": {"source": "render"}},
    "train": {"dsprites": {"epochs": int(sys.argv[2])}},
    "classifier": {"dsprites": {"epochs": 1}},
}
yaml.safe_dump(raw, open(sys.argv[1], "w"))
EOF
cd "$WORK"
M="$PY -m mmjsd --config config.yaml --scale gpucheck"
time $M dsprites-render --out data/raw/dsprites/render.npz
time $M prepare --dataset dsprites --input data/raw/dsprites/render.npz --out-dir data/processed/dsprites
export MMJSD_GPU_LOCK_DIR="$WORK/locks"
for model in mmjsd mmpoe; do
  ( echo "start $(date +%T.%N)"; $M train --dataset dsprites --model $model --seed 0 --threads 4; echo "end $(date +%T.%N) rc=$?" ) > "train_$model.log" 2>&1 &
  sleep 1
done
wait
for model in mmjsd mmpoe; do echo "--- train $model"; cat "train_$model.log"; done
for modality in img text; do $M train-classifier --dataset dsprites --modality $modality --threads 4; done
for model in mmjsd mmpoe; do $M evaluate --dataset dsprites --model $model --seed 0 --threads 4; done
for model in mmjsd mmpoe; do
  cp results/runs/dsprites/$model/seed0/metrics.json "$OUT/gpucheck_${model}_metrics.json"
  cp results/runs/dsprites/$model/seed0/eval.json "$OUT/gpucheck_${model}_eval.json"
  echo "--- curve $model"; cat results/runs/dsprites/$model/seed0/curve.csv
done
cp results/classifiers/dsprites/img.json "$OUT/gpucheck_classifier_img.json"
cp results/classifiers/dsprites/text.json "$OUT/gpucheck_classifier_text.json"
log "done"
