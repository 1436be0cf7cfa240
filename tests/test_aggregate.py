"""Aggregation of hand-made eval.json files into Table 1 (csv + markdown)."""

from __future__ import annotations

import csv
import io
import math

import pytest

from fakes_eval import small_config, write_fake_evaluations
from mmjsd.core import paths
from mmjsd.core.files import sealed
from mmjsd.errors import DataError
from mmjsd.reporting.aggregate import aggregate, cli_aggregate, summarise
from mmjsd.reporting.paper import TABLE1A, TABLE1B


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _find(rows, **key) -> dict:
    found = [r for r in rows if all(r[k] == v for k, v in key.items())]
    assert len(found) == 1, key
    return found[0]


@pytest.fixture
def two_seed_config(tmp_path):
    config = small_config(tmp_path, seeds=[0, 1], datasets=["dsprites", "celeba"])
    write_fake_evaluations(config, offsets={0: -0.01, 1: 0.03})
    return config


def test_summarise_uses_sample_std_and_skips_missing():
    mean, std, n = summarise([1.0, 2.0, 3.0, None, float("nan")])
    assert (mean, n) == (2.0, 3) and std == pytest.approx(1.0)
    assert summarise([0.5]) == (0.5, None, 1)
    assert summarise([None]) == (None, None, 0)


def test_dsprites_rows_mean_std_paper_and_diff(two_seed_config):
    outputs = aggregate(two_seed_config)
    rows = _rows(outputs[str(paths.fill(paths.TABLE1, two_seed_config))])
    # 2 models x (2 directions + 3 representations) x 5 factors
    assert len(rows) == 2 * 5 * 5
    assert list(rows[0]) == ["dataset", "table", "model", "modality", "factor", "mean", "std", "n_seeds", "seeds",
                             "values", "paper", "diff", "scale", "data_source"]
    cell = _find(rows, table="1a", model="mmjsd", modality="img", factor="scale")
    paper = TABLE1A["mmjsd"]["scale"]["img"]
    assert float(cell["mean"]) == pytest.approx(paper + 0.01, abs=1e-4)
    assert float(cell["std"]) == pytest.approx(math.sqrt(2 * 0.02 ** 2), abs=1e-4)  # sample std of +-0.02
    assert float(cell["paper"]) == paper and float(cell["diff"]) == pytest.approx(0.01, abs=1e-4)
    assert cell["n_seeds"] == "2" and cell["seeds"] == "0;1"
    # each run's value in seed order: the fakes are the paper's value -0.01 (seed 0) and +0.03 (seed 1)
    assert [float(v) for v in cell["values"].split(";")] == pytest.approx([paper - 0.01, paper + 0.03], abs=1e-4)
    assert cell["scale"] == "ci" and cell["data_source"] == "render"
    joint = _find(rows, table="1b", model="mmpoe", modality="joint", factor="orientation")
    assert float(joint["paper"]) == TABLE1B["mmpoe"]["joint"]["orientation"]   # the paper's 3rd row
    assert cell["mean"] == f"{paper + 0.01:.4f}"  # fixed format
    # paper order: mmPoE rows before mmJSD, 1a before 1b
    assert [r["model"] for r in rows[:10]] == ["mmpoe"] * 10 and rows[0]["table"] == "1a" and rows[-1]["table"] == "1b"


def test_single_seed_leaves_std_empty(tmp_path):
    config = small_config(tmp_path, seeds=[0], datasets=["dsprites"])
    write_fake_evaluations(config, offsets={0: 0.0})
    rows = _rows(aggregate(config)[str(paths.fill(paths.TABLE1, config))])
    assert all(r["std"] == "" and r["n_seeds"] == "1" for r in rows)
    assert all(float(r["diff"]) == 0.0 for r in rows)


def test_celeba_rows_average_precision_and_undefined_values(two_seed_config):
    outputs = aggregate(two_seed_config)
    rows = _rows(outputs[str(paths.fill(paths.TABLE1_CELEBA, two_seed_config))])
    male = _find(rows, table="1a", model="mmjsd", modality="img", factor="Male")
    assert float(male["mean"]) == pytest.approx(0.51, abs=1e-4) and male["paper"] == "" and male["diff"] == ""
    undefined = _find(rows, table="1a", model="mmjsd", modality="text", factor="Eyeglasses")
    assert undefined["mean"] == "" and undefined["n_seeds"] == "0" and undefined["values"] == "" and undefined["seeds"] == ""
    assert _find(rows, table="1b", model="mmpoe", modality="joint", factor="Smiling")["mean"] == "0.7600"


def test_markdown_layout_labels_and_sources(two_seed_config):
    md = aggregate(two_seed_config)[str(paths.fill(paths.TABLE1_MD, two_seed_config))]
    assert "the CI scale" in md and "PROCEDURAL STAND-IN" in md and "SYNTHETIC STAND-IN" in md
    assert "| model | shape img | shape text |" in md
    assert f"| mmJSD | {TABLE1A['mmjsd']['shape']['img'] + 0.01:.3f} ± 0.028 (0.96)" in md
    assert "| mmPoE | joint |" in md
    assert "Classifiers' own accuracy" in md and "| img | 0.900 |" in md
    assert "CelebA + text" in md and "Male img" in md
    assert "runs/dsprites/mmjsd/seed1/eval.json" in md and "classifiers/dsprites/img.json" in md


def test_rerun_gives_identical_bytes(two_seed_config):
    class Args:
        pass

    assert cli_aggregate(Args, two_seed_config) == 0
    outputs = [paths.fill(t, two_seed_config) for t in (paths.TABLE1, paths.TABLE1_MD, paths.TABLE1_CELEBA)]
    first = [p.read_bytes() for p in outputs]
    assert cli_aggregate(Args, two_seed_config) == 0
    assert [p.read_bytes() for p in outputs] == first


def test_missing_eval_file_names_the_run_and_the_fix(two_seed_config):
    missing = paths.run_file(paths.RUN_EVAL, two_seed_config, "dsprites", "mmpoe", 1)
    missing.unlink()
    with pytest.raises(DataError, match=r"dsprites/mmpoe/seed1") as error:
        aggregate(two_seed_config)
    assert "snakemake" in error.value.fix and str(missing) in error.value.fix


def test_dsprites_only_scale_writes_no_celeba_table(tmp_path):
    config = small_config(tmp_path, seeds=[0], datasets=["dsprites"])
    write_fake_evaluations(config, offsets={0: 0.0})
    outputs = aggregate(config)
    assert str(paths.fill(paths.TABLE1_CELEBA, config)) not in outputs
    assert "CelebA + text" not in outputs[str(paths.fill(paths.TABLE1_MD, config))]


def test_an_evaluation_of_another_run_or_settings_is_not_reported_under_a_slot(two_seed_config):
    """eval.json copied from seed 1 into seed 0's slot, from another scale, or computed under
    other evaluation settings or from another model file: refused in one line, no table written."""
    import json
    import shutil

    config = two_seed_config
    slot = paths.run_file(paths.RUN_EVAL, config, "dsprites", "mmjsd", 0)
    original = slot.read_text()
    shutil.copy(paths.run_file(paths.RUN_EVAL, config, "dsprites", "mmjsd", 1), slot)
    with pytest.raises(DataError, match=r"is the evaluation of another run \(seed 1\), not of dsprites/mmjsd/seed0"):
        aggregate(config)
    record = json.loads(original)
    for key, value in (("scale", "repro"), ("fingerprint", {"settings": {"eval.batch_size": 1}})):
        slot.write_text(json.dumps(sealed({**record, key: value})))        # a whole, sealed record of another kind
        with pytest.raises(DataError, match="another run|other evaluation settings"):
            aggregate(config)
    model = paths.run_file(paths.RUN_MODEL, config, "dsprites", "mmjsd", 0)
    model.write_bytes(b"another model file")
    slot.write_text(original)
    with pytest.raises(DataError, match="computed from another model file") as info:
        aggregate(config)
    # evaluate would refuse a foreign model: the fix rebuilds the model (and so its evaluation)
    assert f"--forcerun {model}`" in str(info.value) and f"scale={config['scale']}" in str(info.value)
    model.unlink()
    aggregate(config)                      # the slot's own evaluation again: accepted


@pytest.mark.parametrize("edit, problem", [
    (lambda r: r["coherence"]["shape"].update(img=0.99), "does not match its content_sha256 seal: it was edited"),
    (lambda r: r.pop("content_sha256"), "carries no content_sha256 seal"),
    (lambda r: [], "holds a JSON list, not the object"),
])
def test_an_edited_number_never_reaches_table_1(two_seed_config, edit, problem):
    """One number changed by hand in a still valid eval.json: refused by aggregate, and by the
    parse-time scan before Snakemake would delete the tables; the printed fix reruns it."""
    import json

    from mmjsd.pipeline.integrity import check_outputs
    from mmjsd.pipeline.startup import snakemake_request

    config = two_seed_config
    slot = paths.run_file(paths.RUN_EVAL, config, "dsprites", "mmjsd", 0)
    record = json.loads(slot.read_text())
    edited = edit(record)
    slot.write_text(json.dumps(edited if isinstance(edited, list) else record))
    with pytest.raises(DataError, match=problem) as info:
        aggregate(config)
    assert f"--forcerun {slot}" in str(info.value)
    with pytest.raises(DataError, match=problem) as info:
        check_outputs(config)
    assert "no job was started" in str(info.value) and f"--forcerun {slot}" in str(info.value)
    fix = snakemake_request(["snakemake", str(slot), "--forcerun", str(slot)])
    check_outputs(config, "config.yaml", fix.force_all, fix.forced)   # the fix's own run is not refused


def test_verify_reads_each_runs_value_as_a_number():
    """`mmjsd verify` compares Table 1 leaf by leaf: a run's value that moved within the tolerance is
    'within tolerance', not a changed string."""
    from mmjsd.pipeline.verify import compare_values, table_values

    header = "dataset,table,model,modality,factor,mean,values\n"
    old = table_values(header + "dsprites,1a,mmjsd,img,shape,0.5000,0.4000;0.6000\n")
    assert old["dsprites.1a.mmjsd.img.shape.values.1"] == 0.6
    near = table_values(header + "dsprites,1a,mmjsd,img,shape,0.5020,0.4000;0.6040\n")
    assert compare_values(old, near)[0] == "within tolerance"
    assert "values.1" in compare_values(old, near)[1]
    far = table_values(header + "dsprites,1a,mmjsd,img,shape,0.5000,0.3000;0.7000\n")
    assert compare_values(old, far)[0] == "different"


def test_verify_refuses_celeba_runs_of_real_images_on_a_machine_without_them(tmp_path):
    """The committed CelebA runs read the real subset; where its folder is absent, `auto` would
    build synthetic faces: verify refuses in one line that names the folder, instead of
    re-evaluating on other images."""
    from mmjsd.pipeline.verify import missing_real_data

    config = small_config(tmp_path, seeds=[0], datasets=["celeba"])
    config["data"]["celeba"].update(source="auto", root=str(tmp_path / "absent"))
    ok, why = missing_real_data(config, "celeba", [{"data_source": "shared-subset"}])
    assert not ok and f"{tmp_path / 'absent'}/img_align_celeba holds none here" in why and "-- fix:" in why
    assert missing_real_data(config, "celeba", [{"data_source": "synthetic"}]) == (True, "")
    assert missing_real_data(config, "dsprites", [{"data_source": "render"}]) == (True, "")
    (tmp_path / "absent" / "img_align_celeba").mkdir(parents=True)
    (tmp_path / "absent" / "img_align_celeba" / "000001.jpg").write_bytes(b"")
    assert missing_real_data(config, "celeba", [{"data_source": "shared-subset"}]) == (True, "")
