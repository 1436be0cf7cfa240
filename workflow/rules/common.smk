# Shared set-up: the validated configuration, path patterns and the CLI prefix.
#
# The configuration is config.yaml with the overlay of the chosen scale merged in
# (`--config scale=demo`). It is validated against workflow/schemas/config.schema.yaml here,
# at parse time, so an unknown key or a bad value stops the run before any job starts.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from mmjsd import gpu as G
from mmjsd import paths as P
from mmjsd.config import read_yaml, resolve, validate_raw
from mmjsd.dvcgen import cli_prefix
from mmjsd.data.dsprites import verify_official
from mmjsd.errors import ConfigError, MmjsdError


configfile: "config.yaml"


def _load_validated_config():
    overrides = {k for k, v in config.items() if k != "scale" and v != read_yaml("config.yaml").get(k)}
    if overrides:
        raise ConfigError(
            f"only 'scale' may be set with --config (got {', '.join(sorted(overrides))})",
            "edit config.yaml or add a scale overlay under 'scales:' and select it with --config scale=NAME",
        )
    validate_raw(config)
    resolved = resolve(config, config.get("scale"))
    celeba = resolved["data"]["celeba"]
    if "celeba" in resolved["datasets"] and celeba["source"] == "folder" and not Path(celeba["root"]).is_dir():
        raise ConfigError(
            f"CelebA folder {celeba['root']} (data.celeba.root) does not exist",
            "point data.celeba.root at a CelebA copy in torchvision's layout, or set data.celeba.source to torchvision or synthetic",
        )
    # A corrupt official dSprites file already on disk stops the run here, before any job
    # (Snakemake would delete the outputs of a job that reruns and fails).
    official = P.dsprites_input(resolved)
    if "dsprites" in resolved["datasets"] and resolved["data"]["dsprites"]["source"] == "official" and official.exists():
        verify_official(official)
    return resolved


try:
    CFG = _load_validated_config()
except MmjsdError as exc:
    sys.exit(f"mmjsd: error: {exc}")

SCALE = CFG["scale"]
DATA = CFG["paths"]["data"]
RESULTS = CFG["paths"]["results"]
# Every rule is one call of this CLI with the same configuration arguments (dvc.yaml's too).
MMJSD = cli_prefix(CFG)
# One environment for every rule: the pinned requirements (environment.yml -> requirements.txt).
CONDA_ENV = str(Path(workflow.basedir) / "environment.yml")


# GPUs (src/mmjsd/gpu.py): `--resources gpu=N` means N devices. Each GPU job claims a share of
# one device (resources.gpu_share per dataset), so the scheduler counts in hundredths of a
# device: a pool of N x 100 `gpu_units`, and each job asks for its share x 100. Without
# `--resources gpu=N` the pool is the number of visible GPUs, so a plain `snakemake all` never
# starts more GPU work than the devices hold (0 on a CPU machine, where GPU jobs ask for none).
# A job that still finds no room (shares fragmented across devices) waits for it and says so.
def _gpu_pool():
    from snakemake.resources import Resource

    resources = workflow.global_resources
    if "gpu_units" not in resources:
        requested = resources["gpu"].value if "gpu" in resources else None
        visible = len(G.visible_gpus())
        resources["gpu_units"] = Resource("gpu_units", G.snakemake_gpu_units(requested, visible))
        origin = f"--resources gpu={requested}" if requested is not None else f"{visible} visible GPU(s)"
        print(f"mmjsd: GPU pool: {resources['gpu_units'].value // G.UNITS_PER_GPU} device(s) from {origin}"
              f" = {resources['gpu_units'].value} gpu_units; a job takes resources.gpu_share x 100"
              f" ({', '.join(f'{d} {G.config_share(CFG, d):g}' for d in CFG['datasets'])})", file=sys.stderr)
    return resources["gpu_units"].value


GPU_POOL = _gpu_pool()


def gpu_units(wildcards):
    """The `gpu_units` one job of this dataset asks for (its share of a device in hundredths)."""
    return G.job_gpu_units(G.config_share(CFG, wildcards.dataset), GPU_POOL)


def pattern(template):
    """A path template with the data/results roots filled in and the rest left as wildcards."""
    return template.replace("{data}", DATA).replace("{results}", RESULTS)


def run_targets(template):
    return expand(pattern(template), dataset=CFG["datasets"], model=CFG["models"], seed=CFG["seeds"])


def settings(*keys):
    """A config section passed as a params value, so that Snakemake reruns the job when it changes."""
    node = CFG
    for key in keys:
        node = node[key]
    return node


def prepare_input(wildcards):
    if wildcards.dataset == "dsprites":
        return str(P.dsprites_input(CFG))
    return str(P.celeba_input(CFG))


def table_outputs():
    outputs = {
        "table": report(pattern(P.TABLE1), caption="../report/table1.rst", category="Table 1"),
        "markdown": pattern(P.TABLE1_MD),
    }
    if "celeba" in CFG["datasets"]:
        outputs["celeba"] = report(pattern(P.TABLE1_CELEBA), caption="../report/table1_celeba.rst", category="Table 1")
    return outputs

