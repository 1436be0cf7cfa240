"""report.md: every required section, demo/stand-in labels, and clear errors for missing inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fakes_eval import DSPRITES_LABELS, small_config, write_fake_evaluations
from mmjsd.core import paths
from mmjsd.errors import DataError
from mmjsd.reporting.aggregate import cli_aggregate
from mmjsd.reporting.report import cli_report, collect, render_report

REPO = Path(__file__).resolve().parents[1]


def _write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.fixture
def finished_pipeline(tmp_path):
    """Hand-made outputs of every earlier step for a ci-scale dsprites + celeba run."""
    config = small_config(tmp_path, seeds=[0], datasets=["dsprites", "celeba"])
    write_fake_evaluations(config, offsets={0: 0.0})
    for dataset in config["datasets"]:
        for model in config["models"]:
            _write_json(paths.run_file(paths.RUN_METRICS, config, dataset, model, 0), {
                "dataset": dataset, "model": model, "seed": 0, "epochs": 1, "n_train": 2700, "final": {"loss": 123.456},
                "samples_per_s": 850.0, "wall_time_s": 12.34, "device": "cpu:x86_64", "threads": 1,
                "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T02:00:00+00:00",
                "provenance": {"git_commit": "abc123", "packages": {"torch": "2.14.1", "numpy": "2.1.0"}},
            })
        for modality in ("img", "text"):
            names = DSPRITES_LABELS if dataset == "dsprites" else ["Male", "Smiling", "Eyeglasses"]
            test = {"accuracy": {n: 0.91 for n in names}, "majority_accuracy": {n: 0.4 for n in names}}
            if dataset == "celeba":
                test["average_precision"] = {n: 0.8 for n in names}
            _write_json(paths.fill(paths.CLASSIFIER_METRICS, config, dataset=dataset, modality=modality), {
                "n_train": 2700, "settings": {"epochs": 1}, "wall_time_s": 3.2, "data_source": "render", "test": test,
                "device": "cuda:NVIDIA H100 80GB HBM3"})
    assert cli_aggregate(None, config) == 0
    paths.fill(paths.FIGURE1, config).write_bytes(b"\x89PNG placeholder")
    return config


def test_report_has_every_section_and_labels_demo_and_stand_in(finished_pipeline):
    text = render_report(finished_pipeline, collect(finished_pipeline))
    for heading in ("## Scale", "## Data sources", "## Seeds and runs", "## Hardware",
                    "## Attribute classifiers", "## Paper comparison", "## Figure 1", "## Provenance"):
        assert heading in text, heading
    assert "**Reduced scale**: `ci` -- the CI scale" in text
    assert "dsprites: STAND-IN DATA (`render`)" in text and "celeba: STAND-IN DATA (`synthetic`)" in text
    assert "procedural stand-in render" in text              # the processed split's notes
    assert "| dsprites | mmJSD | 0 | 1 | 2700 | cpu:x86_64 | ? | 1 | 12.34 | 850.0 | 123.456 |" in text
    assert "`cpu:x86_64`" in text and "49.4 s" in text      # 4 runs x 12.34 s
    assert "- Classifier devices (from their .json): `cuda:NVIDIA H100 80GB HBM3`" in text
    assert "- Evaluation devices (from eval.json): `unknown`" in text   # the fake evaluations name none
    assert "shape 0.910 (0.400)" in text and "mean average precision 0.800" in text
    assert "### (a) Coherence" in text and "(0.96)" in text  # table1.md embedded, headings demoted
    assert "](figure1.png)" in text
    assert "`abc123`" in text and "| torch |" in text
    # Issue 13 item 12: hardware by name, start and end of the run, the whole pipeline's time.
    from mmjsd.training.gpu import cpu_model

    assert f"- Machine that wrote this report: CPU {cpu_model()}, {os.cpu_count()} cores; GPUs: " in text
    assert "started 2026-01-01T00:00:00+00:00" in text and "total pipeline time " in text
    assert "mmPoE's joint representation" in text                  # table1.md's note on the paper's row
    # the settings that change the likelihood or the latents, named per dataset
    for dataset in finished_pipeline["datasets"]:
        model = finished_pipeline["model"][dataset]
        assert f"- Model, {dataset}: text likelihood `{model.get('text_decoder', 'conv')}`" in text
        assert f"content latent {model['content_dim']}" in text


def test_model_settings_lines_name_the_deviations():
    from mmjsd.reporting.report import model_settings_lines

    config = {"datasets": ["dsprites", "celeba"], "model": {
        "dsprites": {"text_decoder": "aligned", "style_dim": {"img": 0, "text": 0}, "content_dim": 16, "image_decoder": "conv"},
        "celeba": {"text_decoder": "conv", "style_dim": 32, "content_dim": 32}}}
    dsprites, celeba = model_settings_lines(config)
    assert dsprites == ("- Model, dsprites: text likelihood `aligned` (the text with its random padding start left out "
                        "(a deviation)); style latents {'img': 0, 'text': 0} (none); content latent 16; image decoder `conv`")
    assert celeba == "- Model, celeba: text likelihood `conv` (the padded text (the paper's)); style latents 32; content latent 32"


def test_cli_writes_report_and_is_repeatable(finished_pipeline):
    assert cli_report(None, finished_pipeline) == 0
    out = paths.fill(paths.REPORT, finished_pipeline)
    first = out.read_bytes()
    assert cli_report(None, finished_pipeline) == 0
    assert out.read_bytes() == first


def test_missing_inputs_are_data_errors_naming_the_fix(finished_pipeline):
    paths.fill(paths.FIGURE1, finished_pipeline).unlink()
    with pytest.raises(DataError, match="figure1.png") as error:
        collect(finished_pipeline)
    assert "mmjsd figure" in error.value.fix
    paths.run_file(paths.RUN_METRICS, finished_pipeline, "celeba", "mmpoe", 0).unlink()
    with pytest.raises(DataError, match="metrics.json") as error:
        collect(finished_pipeline)
    assert "snakemake" in error.value.fix


def test_summaries_hold_only_headline_numbers():
    """Issue 13 item 11: what `dvc metrics show` lists is small; the full record stays beside it."""
    from mmjsd.artifacts.summary import classifier_summary, eval_summary, train_summary

    record = {"coherence": {"shape": {"img": 0.5, "text": 0.7}, "scale": {"img": 0.3, "text": None}},
              "latent": {"img": {"shape": 0.9, "scale": 0.8}, "joint": {"shape": 1.0, "scale": 0.6}}, "provenance": {}}
    assert eval_summary(record) == {"coherence_img": 0.4, "coherence_text": 0.7, "latent_img": 0.85, "latent_joint": 0.8}
    record["coherence_average_precision"] = {"shape": {"img": 0.2, "text": 0.6}, "scale": {"img": 0.4, "text": 0.8}}
    assert eval_summary(record)["coherence_img"] == 0.3 and eval_summary(record)["coherence_text"] == 0.7   # CelebA's Table 1a measure
    metrics = {"final": {"loss": 12.345678}, "epochs": 3, "samples_per_s": 850.0, "wall_time_s": 1.5, "provenance": {}}
    assert train_summary(metrics) == {"loss": 12.3457, "epochs": 3, "samples_per_s": 850.0, "wall_time_s": 1.5}
    assert classifier_summary({"test": {"accuracy": {"a": 0.5, "b": 1.0}}}) == {"accuracy": 0.75}


def test_plots_are_deterministic_pngs_of_every_run_and_table_cell(tmp_path):
    """`mmjsd plots`: curves.png and coherence.png from the runs' curve.csv and Table 1, the same bytes twice."""
    import argparse
    import csv

    from mmjsd.config import load_config
    from mmjsd.core import paths
    from mmjsd.reporting import plots

    config = load_config(REPO / "config.yaml", "ci")
    config["paths"]["results"] = str(tmp_path)
    for d in config["datasets"]:
        for m in config["models"]:
            for s in config["seeds"]:
                curve = paths.run_file(paths.RUN_CURVE, config, d, m, s)
                curve.parent.mkdir(parents=True)
                curve.write_text("epoch,step,loss\n1,10,900.5\n2,20,400.25\n")
    fields = ["dataset", "table", "model", "modality", "factor", "mean", "std", "n_seeds", "seeds", "values", "paper"]
    for d, template, factors in (("dsprites", paths.TABLE1, ["shape", "scale"]), ("celeba", paths.TABLE1_CELEBA, ["Male"])):
        with open(paths.fill(template, config), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for m in config["models"]:
                for mod in ("img", "text"):
                    for f in factors:
                        writer.writerow({"dataset": d, "table": "1a", "model": m, "modality": mod, "factor": f, "mean": "0.5",
                                         "std": "0.1", "n_seeds": "2", "seeds": "0;1", "values": "0.4;0.6",
                                         "paper": "0.9" if d == "dsprites" else ""})
                if d == "dsprites":
                    for rep in ("img", "text", "joint"):
                        writer.writerow({"dataset": d, "table": "1b", "model": m, "modality": rep, "factor": "shape",
                                         "mean": "0.5", "std": "", "n_seeds": "1", "seeds": "0", "values": "0.5", "paper": "1.0"})
    # a panel per direction of each dataset, and dSprites' three Table 1b representations
    assert [(d, t, mod) for d, t, mod, _ in plots._panels(config)] == [
        ("dsprites", "1a", "img"), ("dsprites", "1a", "text"), ("dsprites", "1b", "img"), ("dsprites", "1b", "text"),
        ("dsprites", "1b", "joint"), ("celeba", "1a", "img"), ("celeba", "1a", "text")]
    assert plots._run_values({"values": "0.4;0.6"}) == [0.4, 0.6] and plots._run_values({"values": ""}) == []
    plots.cli_plots(argparse.Namespace(), config)
    first = {t: paths.fill(t, config).read_bytes() for t in (paths.PLOT_CURVES, paths.PLOT_COHERENCE)}
    assert all(b.startswith(b"\x89PNG") for b in first.values())
    plots.cli_plots(argparse.Namespace(), config)
    assert {t: paths.fill(t, config).read_bytes() for t in first} == first
    paths.run_file(paths.RUN_CURVE, config, "dsprites", "mmjsd", 0).unlink()
    with pytest.raises(DataError, match="curve.csv not found"):
        plots.curves_png(config)
