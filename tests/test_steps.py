"""The step registry: config keys and code files per step, derived from the code itself."""

from __future__ import annotations

from mmjsd.artifacts import steps


def test_code_files_follow_the_imports():
    evaluate = steps.code_files("evaluate")
    # what the hand-kept map had wrong: evaluate imports data/celeba.py, not reporting/figure.py
    assert "data/celeba.py" in evaluate and "reporting/figure.py" not in evaluate and "evaluation/evaluate.py" in evaluate
    assert {"training/train.py", "training/checkpoints.py", "training/batches.py", "networks/dsprites.py", "models/objectives.py"} <= set(steps.code_files("train"))
    # the data layer does not depend on the DVC helper, the training code or the config loader
    assert not {"pipeline/pulled.py", "training/train.py", "config.py"} & set(steps.code_files("prepare"))


def test_a_comment_or_docstring_changes_no_digest_and_code_does(tmp_path):
    source = 'def f(x):\n    """Double it."""\n    return 2 * x\n'
    variants = {
        "comment": '# why\ndef f(x):\n    """Double it."""\n    return 2 * x  # twice\n',
        "docstring and layout": 'def f(x):\n    """Twice x."""\n\n    return 2*x\n',
        "code": 'def f(x):\n    """Double it."""\n    return 3 * x\n',
    }
    (tmp_path / "base.py").write_text(source)
    base = steps.normalised_source(tmp_path / "base.py")
    for name, text in variants.items():
        (tmp_path / f"{name}.py").write_text(text)
        assert (steps.normalised_source(tmp_path / f"{name}.py") == base) == (name != "code"), name
    assert len(steps.code_digest("train")) == 16


def test_step_settings_read_the_registry():
    config = {"data": {"dsprites": {"seed": 3}}, "eval": {"batch_size": 8}}
    assert steps.step_settings(config, "prepare", "dsprites") == {"data.dsprites": {"seed": 3}}
    assert steps.step_params(config, "prepare", "dsprites") == '{"data.dsprites":{"seed":3}}'
