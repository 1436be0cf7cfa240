"""Config loading, scale overlays and validation errors (one line, names key and fix)."""

import copy

import pytest
import yaml

from mmjsd import cli
from mmjsd.config import load_config, read_yaml, resolve, validate_raw
from mmjsd.errors import ConfigError
from conftest import REPO


@pytest.fixture
def raw():
    return read_yaml(REPO / "config.yaml")


def test_every_scale_is_valid(raw):
    validate_raw(raw)
    for scale in ["paper", *raw["scales"]]:
        config = resolve(raw, scale)
        assert config["scale"] == scale


def test_scales_write_to_their_own_folders(raw):
    roots = {scale: resolve(raw, scale)["paths"]["results"] for scale in ["paper", *raw["scales"]]}
    assert len(set(roots.values())) == len(roots)
    assert roots["paper"] == "results"


def test_paper_scale_keeps_the_authors_celeba_settings(raw):
    config = resolve(raw, "paper")
    # the authors' schedule plus our documented warm-up (docs/FIDELITY.md, "CelebA at paper width")
    assert config["train"]["celeba"] == {"epochs": 250, "batch_size": 256, "lr": 0.0005, "max_train_samples": None,
                                         "warmup_steps": 500}
    model = config["model"]["celeba"]
    assert (model["content_dim"], model["style_dim"], model["width"]) == (32, 32, 1.0)
    assert model["jsd_weights"] == [0.3, 0.35, 0.35]
    assert (model["beta"], model["beta_style"], model["beta_content"]) == (2.5, 2.0, 1.0)
    assert model["beta_style_modality"] == {"img": 1.0, "text": 5.0}
    assert model["rec_weight"] == {"img": 1.0, "text": 16.0}
    assert model["laplace_scale"] == 0.75
    assert model["logvar_bound"] == 10.0    # our documented deviation (docs/MODELS.md, 12)
    assert config["seeds"] == [0, 1, 2]


def test_cluster_requests_are_per_scale(raw):
    """A cluster job asks for what a job of its scale needs: each smaller scale overrides the
    paper's requests (32 GB, two days of training) under scales.<name>.resources, merged key by key."""
    paper = resolve(raw, "paper")["resources"]
    for scale in raw["scales"]:
        resources = resolve(raw, scale)["resources"]
        assert resources["gpu_share"] == paper["gpu_share"]   # untouched keys stay the paper's
        for rule in ("prepare", "train", "train_classifier", "evaluate"):
            assert resources[rule]["mem_mb"] < paper[rule]["mem_mb"], (scale, rule)
            assert resources[rule]["runtime_min"] < paper[rule]["runtime_min"], (scale, rule)
    assert resolve(raw, "ci")["resources"]["prepare"] == {"runtime_min": 10, "mem_mb": 2000}


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(epochz=3), "config key <top level>: Additional properties"),
    (lambda c: c["train"]["celeba"].update(epochs=0), "config value train.celeba.epochs"),
    (lambda c: c["data"]["dsprites"].update(source="ftp"), "config value data.dsprites.source"),
    (lambda c: c["model"]["celeba"].update(jsd_weights=[0.5, 0.5, 0.5]), "jsd_weights"),
    (lambda c: c.update(models=["mmjsd", "mvae"]), "config value models.1"),
    (lambda c: c["scales"]["demo"]["train"].update(threads="two"), "scale 'demo': config value train.threads"),
    (lambda c: c.update(seeds=[5]), "config value eval.figure.seed: 0 is not one of the seeds [5]"),
    # Issue 13 item 10: caught at parse time, at the position the user typed (not in the padded string).
    (lambda c: c["eval"]["figure"].update(texts=["male", "Male, smiling"]),
     "eval.figure.texts[2] 'Male, smiling': character 'M' at position 1 is not in the text alphabet"),
    (lambda c: c["scales"]["demo"].update(eval={"figure": {"texts": ["smiling \u00e9"]}}),
     "scale 'demo': config value eval.figure.texts[1] 'smiling \u00e9': character '\u00e9' at position 9"),
    (lambda c: c["model"]["celeba"].update(logvar_bound=0), "config value model.celeba.logvar_bound"),
    (lambda c: c["resources"].update(gpu_share={"dsprites": 1.5}), "config value resources.gpu_share.dsprites"),
    (lambda c: c["scales"]["ci"]["resources"]["train"].update(mem_mb=0), "scale 'ci': config value resources.train.mem_mb"),
    (lambda c: c["scales"]["ci"]["resources"].update(plots={"runtime_min": 5, "mem_mb": 500}),
     "scale 'ci': config key resources: Additional properties"),
    # learning rates finite, above 0 and at most 0.1; seeds in [0, 2^32)
    (lambda c: c["train"]["dsprites"].update(lr=float("inf")), "config value train.dsprites.lr"),
    (lambda c: c["train"]["dsprites"].update(lr=float("nan")), "config value train.dsprites.lr"),
    (lambda c: c["train"]["dsprites"].update(lr=1.0), "config value train.dsprites.lr"),
    (lambda c: c["classifier"]["celeba"].update(lr=0), "config value classifier.celeba.lr"),
    (lambda c: c.update(seeds=[0, 2**32]), "config value seeds.1"),
    (lambda c: c["data"]["dsprites"].update(seed=2**63), "config value data.dsprites.seed"),
    (lambda c: c["data"]["celeba"].update(val_fraction=0), "config value data.celeba.val_fraction"),
    # values that cannot make a meaningful run: every layer at the floor, a probe on 1 sample
    (lambda c: c["model"]["dsprites"].update(width=1e-9), "config value model.dsprites.width: 1e-09 leaves the narrowest layer"),
    (lambda c: c["model"]["celeba"].update(width={"img": 1.0, "text": 0.001}), "config value model.celeba.width.text: 0.001"),
    (lambda c: c["classifier"]["dsprites"].update(width=0.01), "config value classifier.dsprites.width: 0.01"),
    (lambda c: c["scales"]["ci"]["data"]["dsprites"].update(subset=8),
     "scale 'ci': config value data.dsprites.subset: 8 rows leave 1 for test_fit and 1 for val_fit, fewer than eval.latent_fit_samples (16)"),
    (lambda c: c["scales"]["ci"]["data"]["celeba"].update(synthetic_count=100), "config value data.celeba.synthetic_count: 100 rows"),
    (lambda c: c["scales"]["demo"].setdefault("data", {}).setdefault("celeba", {}).update(max_images=1000),
     "scale 'demo': config value data.celeba.max_images: 1000 rows leave 50 for test_fit"),
])
def test_invalid_config_names_the_key(raw, mutate, message):
    bad = copy.deepcopy(raw)
    mutate(bad)
    with pytest.raises(ConfigError) as info:
        validate_raw(bad)
        resolve(bad)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert "fix:" in str(info.value)


def test_the_narrowest_layers_the_width_check_names_are_the_networks(raw):
    from mmjsd.config import DSPRITES_GRID_ROWS, NARROWEST_LAYER
    from mmjsd.data.dsprites import N_ROWS
    from mmjsd.networks import classifier, dsprites

    assert NARROWEST_LAYER["dsprites"] == min(*dsprites.IMG_CHANNELS, *dsprites.TEXT_CHANNELS, dsprites.HIDDEN)
    assert NARROWEST_LAYER["classifier"] == min(*classifier.IMG_CHANNELS, *classifier.TEXT_CHANNELS, classifier.HIDDEN)
    source = (REPO / "src" / "mmjsd" / "networks" / "celeba.py").read_text()
    assert "scaled(n, width) for n in (128, 256, 384, 512, 640)" in source and NARROWEST_LAYER["celeba"] == 128
    assert DSPRITES_GRID_ROWS == N_ROWS
    resolve(dict(raw, model=dict(raw["model"], dsprites=dict(raw["model"]["dsprites"], width=1 / 32))))   # the smallest width allowed


def test_held_out_sizes_are_what_prepare_makes():
    from mmjsd.config import held_out_sizes
    from mmjsd.data.processed import split_indices

    for n in (8, 400, 3000, 12345):
        splits = split_indices(n, 0.1, 0, 0.1)
        assert held_out_sizes(n, 0.1, 0.1) == (len(splits["test_fit"]), len(splits["val_fit"]))


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("scale: paper\ntrain:\n  threads: 1\n  threads: 4\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert "key 'threads' appears twice in one mapping (lines 3 and 4)" in str(info.value) and "\n" not in str(info.value)


def test_unknown_scale(raw):
    with pytest.raises(ConfigError, match="unknown scale 'huge'"):
        resolve(raw, "huge")


def test_cli_reports_bad_config_in_one_line(tmp_path, raw, capsys):
    bad = copy.deepcopy(raw)
    bad["eval"]["batch_size"] = -1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert cli.main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmjsd: error: config value eval.batch_size")


def test_cli_missing_config_file(tmp_path, capsys):
    assert cli.main(["check-config", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_check_config_prints_merged_scale(capsys):
    assert cli.main(["check-config", "--config", str(REPO / "config.yaml"), "--scale", "demo"]) == 0
    merged = yaml.safe_load(capsys.readouterr().out)
    assert merged["scale"] == "demo" and merged["paths"]["results"] == "results/demo"
    assert load_config(REPO / "config.yaml", "demo") == merged


def _properties(node: dict, schema: dict, where: str = ""):
    """(dotted key, its schema) for every key the schema defines, following $ref into $defs."""
    if "$ref" in node:
        target = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        yield from _properties(target, schema, where)
    for branch in node.get("oneOf", []):
        yield from _properties(branch, schema, where)
    for key, child in node.get("properties", {}).items():
        yield f"{where}{key}", child
        yield from _properties(child, schema, f"{where}{key}.")


def test_every_schema_key_says_what_it_means():
    schema = yaml.safe_load((REPO / "src" / "mmjsd" / "schemas" / "config.schema.yaml").read_text())
    keys = list(_properties(schema, schema))
    assert len(keys) > 80
    assert [key for key, node in keys if not node.get("description")] == []


def test_schema_names_the_vocabulary():
    from mmjsd.core.vocabulary import DATASETS, MODELS

    schema = yaml.safe_load((REPO / "src" / "mmjsd" / "schemas" / "config.schema.yaml").read_text())
    assert tuple(schema["properties"]["datasets"]["items"]["enum"]) == DATASETS
    assert tuple(schema["properties"]["models"]["items"]["enum"]) == MODELS
