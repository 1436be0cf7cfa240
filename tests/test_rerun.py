"""`mmjsd compare-rerun`: a run retrained elsewhere placed among the committed runs, cell by cell."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from fakes_eval import small_config, write_fake_evaluations
from mmjsd.core import paths
from mmjsd.core.files import sealed
from mmjsd.errors import DataError
from mmjsd.reporting.aggregate import aggregate
from mmjsd.reporting.rerun import cli_compare_rerun, compare, place


@pytest.fixture
def committed(tmp_path):
    """Three committed seeds (the paper's values -0.02, +0.0, +0.02) and their tables."""
    config = small_config(tmp_path / "committed", seeds=[0, 1, 2], datasets=["dsprites"])
    write_fake_evaluations(config, offsets={0: -0.02, 1: 0.0, 2: 0.02})
    for path, text in aggregate(config).items():
        with open(path, "w") as handle:
            handle.write(text)
    return config


def _rerun(config, tmp_path, edit=None, seed=0):
    """A copy of seed `seed`'s evaluation in another results folder, `edit` applied and sealed again."""
    source = paths.run_file(paths.RUN_EVAL, config, "dsprites", "mmjsd", seed)
    folder = tmp_path / "other" / "results"
    target = folder / "runs" / "dsprites" / "mmjsd" / f"seed{seed}" / "eval.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(source.read_text())
    record["provenance"]["config"] = json.loads(json.dumps(config))     # as `evaluate` records it: the merged config
    if edit:
        edit(record)
    target.write_text(json.dumps(sealed({k: v for k, v in record.items() if k != "content_sha256"})))
    return folder


def test_a_committed_run_lands_inside_and_a_far_cell_is_named(committed, tmp_path, capsys):
    same = compare(committed, _rerun(committed, tmp_path))
    assert len(same) == 1 and "25 cells, 25 inside the committed runs' range, 0 near (within mean ± 2 std), 0 outside" in same[0]

    def other_kind(record):                 # the image content of the other kind of solution
        record["latent"]["img"]["shape"] = 0.9
        record["coherence"]["shape"]["text"] += 0.045     # 0.995: above the range 0.95-0.99, within 2 sd (0.02)
    lines = compare(committed, _rerun(committed, tmp_path, other_kind))
    assert "23 inside the committed runs' range, 1 near (within mean ± 2 std), 1 outside" in lines[0]
    assert lines[1].startswith("  outside: dsprites/mmjsd/seed0 1b img shape 0.900 against committed")
    assert "farthest: 1b img shape 0.900" in lines[0] and len(lines) == 2
    assert cli_compare_rerun(argparse.Namespace(results=str(_rerun(committed, tmp_path, other_kind))), committed) == 0
    assert "1 outside" in capsys.readouterr().out


def test_a_rerun_of_other_settings_or_no_runs_is_refused(committed, tmp_path):
    def other_settings(record):
        record["fingerprint"]["settings"]["eval.max_test_samples"] = 123
    with pytest.raises(DataError, match="another evaluation settings"):
        compare(committed, _rerun(committed, tmp_path, other_settings))
    def longer_training(record):
        record["provenance"]["config"]["train"]["dsprites"]["epochs"] = 24
    with pytest.raises(DataError, match=r"trained with other settings \(train.dsprites\)"):
        compare(committed, _rerun(committed, tmp_path, longer_training))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no runs/<dataset>/<model>/seed<S>/eval.json"):
        compare(committed, empty)
    shutil.rmtree(tmp_path / "other")
    folder = _rerun(committed, tmp_path)
    paths.fill(paths.TABLE1, committed).unlink()
    with pytest.raises(DataError, match="no committed table"):
        compare(committed, folder)


def test_place_uses_the_range_then_two_standard_deviations():
    assert place(0.5, [0.4, 0.5, 0.6])[0] == "inside"
    assert place(0.65, [0.4, 0.5, 0.6])[0] == "near"        # sd 0.1: 1.5 sd from the mean
    where, distance = place(0.8, [0.4, 0.5, 0.6])
    assert where == "outside" and distance == pytest.approx(3.0)
    assert place(0.6, [0.5])[0] == "outside"                  # one committed run: no spread to be near
