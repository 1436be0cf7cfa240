"""The shared pieces of issue 14: one torch loader and JSON reader with the one-line error, the
seeded sorted subset, batching, the folder written atomically, and `max_train_samples`."""

from __future__ import annotations

import pytest
import torch

from fakes_eval import small_config
from mmjsd.core import files, paths
from mmjsd.data.processed import model_input, sorted_subset
from mmjsd.errors import DataError, TrainingError
from mmjsd.evaluation.evaluate import read_classifier_metrics
from mmjsd.training import runtime


def test_batches_cover_every_row_once_in_order():
    rows = torch.arange(10)
    parts = list(runtime.batches(rows, 4))
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert runtime.n_batches(10, 4) == 3 and torch.equal(runtime.nth_batch(rows, 2, 4), parts[2])


def test_sorted_subset_is_seeded_sorted_and_leaves_the_generator_alone_without_a_cap():
    draw = lambda: sorted_subset(100, 10, torch.Generator().manual_seed(3))   # noqa: E731
    rows = draw()
    assert rows.numel() == 10 and torch.equal(rows, rows.sort().values) and torch.equal(rows, draw())
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(sorted_subset(5, None, generator), torch.arange(5))
    assert torch.equal(sorted_subset(5, 5, generator), torch.arange(5))
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(3).get_state())


def test_model_input_is_the_models_convention():
    images = torch.tensor([[0, 255]], dtype=torch.uint8)
    assert torch.equal(model_input("img", images), torch.tensor([[0.0, 1.0]]))
    assert model_input("text", images).dtype == torch.int64


def test_one_json_reader_turns_every_fault_into_one_line(tmp_path):
    with pytest.raises(DataError, match="thing .* not found -- fix: make it"):
        files.read_json(tmp_path / "none.json", "make it", what="thing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="is not valid JSON"):
        files.read_json(tmp_path / "bad.json", "make it")


def test_classifier_metrics_that_are_not_json_are_a_data_error(tmp_path):
    config = small_config(tmp_path)
    path = paths.fill(paths.CLASSIFIER_METRICS, config, dataset="dsprites", modality="img")
    path.parent.mkdir(parents=True)
    path.write_text("{truncated")
    with pytest.raises(DataError, match="classifier metrics .* is not valid JSON.*train-classifier"):
        read_classifier_metrics(config, "dsprites", "img")


def test_one_torch_loader_and_checksum(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainingError, match="checkpoint .*bad.pt cannot be read"):
        files.torch_load(tmp_path / "bad.pt", "checkpoint", "delete it", error=TrainingError)
    with pytest.raises(DataError, match="model file .* not found -- fix: train it"):
        files.torch_load(tmp_path / "none.pt", "model file", "delete it", missing_fix="train it")
    blob = {"weights": torch.ones(3)}
    blob["checksum"] = files.content_checksum(blob)
    files.check_checksum(blob, "model file", "m.pt", "retrain")
    blob["weights"][0] = 2.0
    with pytest.raises(DataError, match="is damaged"):
        files.check_checksum(blob, "model file", "m.pt", "retrain")
    files.check_checksum({"weights": torch.ones(1)}, "model file", "m.pt", "retrain")   # written before checksums
    with pytest.raises(DataError, match="is damaged"):
        files.check_checksum({"weights": torch.ones(1)}, "model file", "m.pt", "retrain", required=True)


def test_atomic_folder_replaces_the_old_folder_whole(tmp_path):
    out = tmp_path / "folder"
    with files.atomic_folder(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with files.atomic_folder(out) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["a"]          # the failed write left the old folder
    with files.atomic_folder(out) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]  # no temporaries left


def test_max_train_samples_is_a_seeded_subset_in_split_order():
    from mmjsd.training.batches import InMemoryData

    split = {"images": torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 8, 8).contiguous(),
             "text": torch.arange(40, dtype=torch.uint8).view(40, 1), "dataset": "celeba"}
    data = InMemoryData.from_split(split, "cpu", 10, seed=0)
    kept = data.text[:, 0].long()
    assert len(data) == 10 and torch.equal(kept, kept.sort().values) and not torch.equal(kept, torch.arange(10))
    assert torch.equal(kept, sorted_subset(40, 10, torch.Generator().manual_seed(0)))
    assert len(InMemoryData.from_split(split, "cpu", None, seed=0)) == 40
