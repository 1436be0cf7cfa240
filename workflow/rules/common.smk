# Shared set-up: the validated configuration, the job table's declarations and the CLI prefix.
#
# The configuration is config.yaml (or one complete file given with `--configfile FILE`) with
# the overlay of the chosen scale merged in (`--config scale=demo`); every rule passes the same
# file to the CLI. mmjsd.pipeline.startup.load validates it against src/mmjsd/schemas/config.schema.yaml
# at parse time, so an unknown key or a bad value stops the run before any job starts, and in the
# process that plans the run it also checks what is on disk (a cluster job's own process, which
# parses this file again to run its one job, only reads the configuration).
#
# Each rule is declared from its entry in the job table (src/mmjsd/pipeline/jobs.py; outputs, inputs, log,
# command, resources), which `mmjsd status` and the start-up checks read too.
#
# No `conda:` directive: every rule calls this repository's own `mmjsd`, so the one environment
# is the one Snakemake runs in (.venv from requirements.txt, or `conda env create -f
# environment.yml` from the repository root). A per-rule environment file could not install the
# package (Snakemake copies it elsewhere, where `-r requirements.txt` and `-e .` do not resolve),
# and a named environment makes Snakemake call `conda` on every run, also without --sdm conda.
# `make lint` accepts that one lint for this reason (workflow/lint.py).

import re
from pathlib import Path

from mmjsd.artifacts.steps import code_paths, step_params
from mmjsd.pipeline import startup
from mmjsd.data.processed import raw_input
from mmjsd.pipeline.jobs import STEPS, shell_command, step_outputs
from mmjsd.pipeline.schedule import train_priority
from mmjsd.training import gpu as G

SETUP = startup.load(workflow, config)
CFG = SETUP.config
SCALE = SETUP.scale
MMJSD = SETUP.cli      # every rule is one call of this CLI with the same configuration arguments
# GPUs (src/mmjsd/training/gpu.py): `--resources gpu=N` means N devices. Each GPU job claims a share of one
# device (resources.gpu_share per dataset) from a pool of N x 100 `gpu_units`; without
# `--resources gpu=N` the pool is the visible GPUs (0 on a CPU machine, where jobs ask for none).
GPU_POOL = startup.gpu_pool(workflow, SETUP)

# Figures and tables shown by `snakemake --report` (captions in workflow/report/).
REPORTED = {
    ("aggregate", "table"): ("table1.rst", "Table 1"),
    ("aggregate", "celeba"): ("table1_celeba.rst", "Table 1"),
    ("plots", "curves"): ("plots.rst", "Plots"),
    ("plots", "coherence"): ("plots.rst", "Plots"),
    ("figure", "figure"): ("figure1.rst", "Figure 1"),
    ("report", "report"): ("report.rst", "Report"),
}


def pattern(template):
    """A path template with the data/results roots filled in and the rest left as wildcards."""
    return template.replace("{data}", CFG["paths"]["data"]).replace("{results}", CFG["paths"]["results"])


def job_outputs(name):
    outputs = {}
    for output, template in step_outputs(CFG, STEPS[name]).items():
        path = directory(pattern(template)) if STEPS[name].directory else pattern(template)
        if (name, output) in REPORTED:
            caption, category = REPORTED[(name, output)]
            path = report(path, caption=f"../report/{caption}", category=category)
        outputs[output] = path
    return outputs


def job_inputs(name):
    """The files one job of `rule` reads, and the code it runs (a code change reruns it)."""
    step = STEPS[name]

    def inputs(wildcards):
        found = step.inputs(CFG, {name: wildcards[name] for name in step.over})
        if step.code:
            found["code"] = code_paths(step.code, CFG)
        return found

    return inputs


def job_log(name):
    return f"logs/{SCALE}/{STEPS[name].log}.log"


def job_resources(name):
    """runtime and memory of the scale (config `resources:`), and a GPU share for device steps."""
    step = STEPS[name]
    found = {}
    if step.resources:
        found = {"runtime": CFG["resources"][step.resources]["runtime_min"], "mem_mb": CFG["resources"][step.resources]["mem_mb"]}
    if step.device:
        found["gpu_units"] = lambda wildcards: G.job_gpu_units(G.config_share(CFG, wildcards.dataset), GPU_POOL)
    return found


def settings(step, wildcards=None):
    """The config keys `step` reads (STEP_PARAMS in src/mmjsd/artifacts/steps.py) as a params value, so that
    Snakemake reruns the job exactly when one of them changes."""
    return step_params(CFG, step, getattr(wildcards, "dataset", None))


def job_shell(name):
    return shell_command(STEPS[name])


def one_of(names):
    return "|".join(re.escape(str(name)) for name in names)
