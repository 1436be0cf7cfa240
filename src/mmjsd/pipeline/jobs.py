"""Every job of a scale in one table: its step, wildcards, inputs, outputs, log, resources and command.

The Snakemake rules (workflow/rules/*.smk) declare each step from STEPS, and everything that lists
a scale's jobs outside Snakemake reads `jobs(config)`: `mmjsd status`, the start-up checks
(mmjsd.pipeline.startup, mmjsd.pipeline.integrity). Adding a model, a dataset or a seed to the config adds its
jobs everywhere at once; adding a step means one entry here and one rule.

Templates are those of mmjsd.core.paths: `{data}` and `{results}` are the config's roots, the other
fields are wildcards (dataset, modality, model, seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Callable

from mmjsd.artifacts.steps import code_paths
from mmjsd.core import paths as P
from mmjsd.core.vocabulary import MODALITIES
from mmjsd.data.processed import raw_input

WILDCARDS = ("dataset", "modality", "model", "seed")


@dataclass(frozen=True)
class Step:
    rule: str                         # the Snakemake rule
    over: tuple[str, ...]             # the wildcards it runs over, from the config (WILDCARDS)
    outputs: dict[str, str] | Callable[[dict], dict[str, str]]   # name -> path template (or a function of the config)
    log: str                          # log name under logs/<scale>/, wildcards in braces
    command: tuple[str, ...]          # `mmjsd` subcommand and arguments; {x}: a wildcard, {output[...]}/{params...}: the rule's
    inputs: Callable[[dict, dict], dict[str, list[str]]] = lambda config, w: {}   # name -> files, for one job
    code: str | None = None           # steps.STEP_MODULES entry whose files are inputs (reruns on a code change)
    resources: str | None = None      # config `resources:` entry (runtime_min, mem_mb)
    threads: bool = False             # takes train.threads (and passes --threads)
    device: bool = False              # may claim a GPU share (mmjsd.training.gpu)
    directory: bool = False           # its one output is a folder
    partial: str | None = None        # what an unfinished job leaves (a training checkpoint)
    applies: Callable[[dict], bool] = lambda config: True   # does this config run the step at all
    label: Callable[[dict], str] = field(default=lambda w: "/".join(str(w[k]) if k != "seed" else f"seed{w[k]}" for k in w))


def _fill(template: str, config: dict, **wildcards) -> str:
    return str(P.fill(template, config, **wildcards))


def _splits(config: dict, dataset: str, names) -> list[str]:
    return [_fill(P.PROCESSED, config, dataset=dataset, split=name) for name in names]


def _runs(config: dict, template: str) -> list[str]:
    return [_fill(template, config, dataset=d, model=m, seed=s)
            for d in config["datasets"] for m in config["models"] for s in config["seeds"]]


def _tables(config: dict) -> dict[str, str]:
    tables = {"table": P.TABLE1, "markdown": P.TABLE1_MD, "metrics": P.METRICS}
    if "celeba" in config["datasets"]:
        tables["celeba"] = P.TABLE1_CELEBA
    return tables


def _prepare_inputs(config: dict, w: dict) -> dict[str, list[str]]:
    # A CelebA folder of the user's (no job writes it) is tracked by the manifest of its content
    # (data/manifest.py), so that a file edited in place reruns `prepare`; the rest by the file or
    # folder a rule writes.
    if w["dataset"] == "celeba" and P.celeba_source(config) == "folder":
        return {"raw": [_fill(P.CELEBA_MANIFEST, config)]}
    return {"raw": [str(raw_input(config, w["dataset"]))]}


def _figure_runs(config: dict, template: str) -> list[str]:
    return [_fill(template, config, dataset="celeba", model=m, seed=config["eval"]["figure"]["seed"]) for m in config["models"]]


STEPS: dict[str, Step] = {step.rule: step for step in (
    Step("dsprites_download", (), {"npz": P.DSPRITES_RAW.replace("{source}", "official")}, "dsprites_download",
         ("dsprites-download", "--out", "{output}"),
         applies=lambda c: "dsprites" in c["datasets"] and c["data"]["dsprites"]["source"] == "official",
         label=lambda w: "dsprites"),
    Step("dsprites_render", (), {"npz": P.DSPRITES_RAW.replace("{source}", "render")}, "dsprites_render",
         ("dsprites-render", "--out", "{output}"), code="dsprites_render",
         applies=lambda c: "dsprites" in c["datasets"] and c["data"]["dsprites"]["source"] == "render",
         label=lambda w: "dsprites"),
    Step("celeba_download", (), {"folder": P.CELEBA_TORCHVISION}, "celeba_download",
         ("celeba-download", "--root", "{params.root}"), directory=True,
         applies=lambda c: "celeba" in c["datasets"] and P.celeba_source(c) == "torchvision",
         label=lambda w: "celeba"),
    Step("celeba_synthesize", (), {"folder": P.CELEBA_SYNTHETIC}, "celeba_synthesize",
         ("celeba-synthesize", "--out", "{output}"), code="celeba_synthesize", directory=True,
         applies=lambda c: "celeba" in c["datasets"] and P.celeba_source(c) == "synthetic",
         label=lambda w: "celeba"),
    Step("prepare", ("dataset",), {f"split_{name}": P.PROCESSED.replace("{split}", name) for name in P.SPLITS},
         "prepare_{dataset}", ("prepare", "--dataset", "{dataset}", "--input", "{params.raw}", "--out-dir", "{params.out_dir}"),
         inputs=_prepare_inputs, code="prepare", resources="prepare"),
    Step("train_classifier", ("dataset", "modality"),
         {"classifier": P.CLASSIFIER, "metrics": P.CLASSIFIER_METRICS, "summary": P.CLASSIFIER_SUMMARY},
         "classifier_{dataset}_{modality}", ("train-classifier", "--dataset", "{dataset}", "--modality", "{modality}"),
         inputs=lambda c, w: {"splits": _splits(c, w["dataset"], ("train", "test"))},
         code="classifier", resources="train_classifier", threads=True, device=True),
    Step("train", ("dataset", "model", "seed"),
         {"model": P.RUN_MODEL, "metrics": P.RUN_METRICS, "curve": P.RUN_CURVE, "summary": P.RUN_SUMMARY},
         "train_{dataset}_{model}_seed{seed}", ("train", "--dataset", "{dataset}", "--model", "{model}", "--seed", "{seed}"),
         inputs=lambda c, w: {"split": _splits(c, w["dataset"], ("train",))},
         code="train", resources="train", threads=True, device=True, partial=P.RUN_CHECKPOINT),
    Step("evaluate", ("dataset", "model", "seed"), {"record": P.RUN_EVAL, "summary": P.RUN_EVAL_SUMMARY},
         "evaluate_{dataset}_{model}_seed{seed}", ("evaluate", "--dataset", "{dataset}", "--model", "{model}", "--seed", "{seed}"),
         inputs=lambda c, w: {"model": [_fill(P.RUN_MODEL, c, **w)],
                              "classifiers": [_fill(P.CLASSIFIER, c, dataset=w["dataset"], modality=m) for m in MODALITIES],
                              "splits": _splits(c, w["dataset"], P.HOLDOUT_SPLITS["test"])},
         code="evaluate", resources="evaluate", threads=True, device=True),
    Step("aggregate", (), _tables,
         "aggregate", ("aggregate",),
         inputs=lambda c, w: {"evals": _runs(c, P.RUN_EVAL), "metrics": _runs(c, P.RUN_METRICS)},
         code="aggregate", label=lambda w: "table 1"),
    Step("plots", (), {"curves": P.PLOT_CURVES, "coherence": P.PLOT_COHERENCE}, "plots", ("plots",),
         inputs=lambda c, w: {"curves": _runs(c, P.RUN_CURVE), "tables": [_fill(t, c) for t in _tables(c).values()]},
         code="plots", label=lambda w: "plots"),
    Step("figure", (), {"figure": P.FIGURE1}, "figure", ("figure",),
         # eval.json: the conditioning gaps printed under each panel
         inputs=lambda c, w: {"models": _figure_runs(c, P.RUN_MODEL), "evals": _figure_runs(c, P.RUN_EVAL),
                              "split": _splits(c, "celeba", ("test",))},
         code="figure", applies=lambda c: "celeba" in c["datasets"], label=lambda w: "figure 1"),
    Step("report", (), {"report": P.REPORT}, "report", ("report",),
         inputs=lambda c, w: {"tables": [_fill(t, c) for t in _tables(c).values()],
                              "figure": [_fill(P.FIGURE1, c)] if "celeba" in c["datasets"] else [],
                              "classifiers": [_fill(P.CLASSIFIER_METRICS, c, dataset=d, modality=m)
                                              for d in c["datasets"] for m in MODALITIES]},
         code="report", label=lambda w: "report.md"),
)}


def step_outputs(config: dict, step: Step) -> dict[str, str]:
    """The output templates of `step` under this config (a step whose outputs depend on the config,
    such as the CelebA table of `aggregate`, gives them as a function of it)."""
    return step.outputs(config) if callable(step.outputs) else dict(step.outputs)


def wildcard_values(config: dict, name: str) -> list:
    return {"dataset": config["datasets"], "modality": list(MODALITIES), "model": config["models"],
            "seed": config["seeds"]}[name]


@dataclass(frozen=True)
class Job:
    step: Step
    wildcards: dict
    outputs: dict[str, Path]
    inputs: dict[str, list[Path]]
    log: Path
    command: tuple[str, ...]          # the mmjsd subcommand and its wildcard arguments (no paths)
    partial: Path | None

    @property
    def name(self) -> str:
        return self.step.label(self.wildcards)


def _command(step: Step, wildcards: dict) -> tuple[str, ...]:
    """The subcommand and its wildcard arguments, up to the first argument the rule fills in itself."""
    out = []
    for part in step.command:
        if "{output" in part or "{params" in part:
            break
        out.append(part.format(**wildcards))
    return tuple(out[:-1] if out and out[-1].startswith("--") else out)


def jobs(config: dict) -> list[Job]:
    """Every job of this config's scale, in the order the pipeline runs them."""
    found = []
    for step in STEPS.values():
        if not step.applies(config):
            continue
        for values in product(*(wildcard_values(config, name) for name in step.over)):
            wildcards = dict(zip(step.over, values))
            outputs = {k: Path(_fill(t, config, **wildcards)) for k, t in step_outputs(config, step).items()}
            inputs = {k: [Path(p) for p in v] for k, v in step.inputs(config, wildcards).items()}
            if step.code:
                inputs["code"] = [Path(p) for p in code_paths(step.code, config)]
            found.append(Job(step, wildcards, outputs, inputs, Path("logs") / config["scale"] / f"{step.log.format(**wildcards)}.log",
                             _command(step, wildcards),
                             Path(_fill(step.partial, config, **wildcards)) if step.partial else None))
    return found


def shell_command(step: Step) -> str:
    """The rule's shell line: `{params.cli}` (the CLI with its config and scale), the step's command
    with Snakemake's wildcards, every path quoted by Snakemake (`:q`), and the log."""
    parts = []
    for part in step.command:
        if part.startswith("{") and part[1:-1] in WILDCARDS:
            parts.append("{wildcards." + part[1:-1] + "}")
        elif part.startswith("{"):
            parts.append(part[:-1] + ":q}")
        else:
            parts.append(part)
    threads = " --threads {threads}" if step.threads else ""
    return "{params.cli} " + " ".join(parts) + threads + " > {log:q} 2>&1"
