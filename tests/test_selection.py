"""The validation selection rule (benchmarks/selection/choose.py) on known scores."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from mmjsd.lab import holdout

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("choose", REPO / "benchmarks" / "selection" / "choose.py")
choose = importlib.util.module_from_spec(spec)
_outside = os.environ.get(holdout.ENV)
spec.loader.exec_module(choose)        # a selection tool: importing it enters selection for the process...
if _outside is None:                   # ...which the rest of the test session must not inherit
    os.environ.pop(holdout.ENV, None)
else:
    os.environ[holdout.ENV] = _outside


def records(scores: dict[tuple[str, str], list[float]], holdout: str = "val") -> str:
    lines = []
    for (candidate, model), values in scores.items():
        for seed, value in enumerate(values):
            lines.append(json.dumps({"name": choose.run_name("image_decoder", candidate, seed), "holdout": holdout,
                                     "model": model, "dataset": "dsprites", "seed": seed,
                                     "coherence": {"shape": {"img": value, "text": value}}}))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("pose_mmpoe, decision", [
    ([0.40, 0.41], "adopt pose"),     # helps mmJSD, leaves mmPoE within noise
    ([0.20, 0.21], "keep conv (lowers mmpoe beyond the seed noise)"),   # a shared setting is not tilted
])
def test_a_deviation_must_help_one_model_and_hurt_neither(tmp_path, pose_mmpoe, decision):
    (tmp_path / "results.jsonl").write_text(records({
        ("conv", "mmjsd"): [0.50, 0.51], ("conv", "mmpoe"): [0.40, 0.41],
        ("pose", "mmjsd"): [0.80, 0.81], ("pose", "mmpoe"): pose_mmpoe}))
    [line] = choose.decide(choose.collect(tmp_path, "image_decoder"))
    assert line.endswith(decision)


def test_one_seed_decides_nothing_and_test_numbers_are_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text(records({("conv", "mmjsd"): [0.5], ("conv", "mmpoe"): [0.4],
                                                      ("pose", "mmjsd"): [0.8], ("pose", "mmpoe"): [0.4]}))
    assert "not decided" in choose.decide(choose.collect(tmp_path, "image_decoder"))[0]
    (tmp_path / "results.jsonl").write_text(records({("conv", "mmjsd"): [0.5]}, holdout="test"))
    with pytest.raises(SystemExit, match="not scored on val"):
        choose.collect(tmp_path, "image_decoder")


def test_a_model_lowered_beyond_noise_decides_before_the_other_models_runs_land(tmp_path):
    (tmp_path / "results.jsonl").write_text(records({("conv", "mmjsd"): [0.70, 0.71], ("pose", "mmjsd"): [0.58, 0.59],
                                                      ("conv", "mmpoe"): [0.4]}))
    [line] = choose.decide(choose.collect(tmp_path, "image_decoder"))
    assert line.endswith("keep conv (lowers mmjsd beyond the seed noise)")


def test_reuse_records_runs_of_equal_settings_under_another_choice_and_refuses_different_ones(tmp_path, monkeypatch):
    (tmp_path / "results.jsonl").write_text(records({("aligned", "mmjsd"): [0.7, 0.72], ("aligned", "mmpoe"): [0.5, 0.52]}).replace(
        "image_decoder", "text_decoder"))
    monkeypatch.setattr(sys, "argv", ["choose.py", "reuse", "text_decoder:aligned", "dsprites_lr:lr0.002", "--seeds", "0", "1",
                                      "--workdir", str(tmp_path)])
    choose.main()
    found = choose.collect(tmp_path, "dsprites_lr")
    assert sorted(found["lr0.002"]["mmjsd"]) == [(0, 0.7), (1, 0.72)] and len(found["lr0.002"]["mmpoe"]) == 2
    choose.main()                                   # a second call adds nothing
    assert len(choose.collect(tmp_path, "dsprites_lr")["lr0.002"]["mmjsd"]) == 2
    monkeypatch.setattr(sys, "argv", ["choose.py", "reuse", "text_decoder:conv", "dsprites_lr:lr0.002", "--seeds", "0",
                                      "--workdir", str(tmp_path)])
    with pytest.raises(SystemExit, match="differ in settings"):
        choose.main()
