# Shared set-up: the validated configuration, path patterns and the CLI prefix.
#
# The configuration is config.yaml (or one complete file given with `--configfile FILE`) with
# the overlay of the chosen scale merged in (`--config scale=demo`); every rule passes the same
# file to the CLI. It is validated against src/mmjsd/schemas/config.schema.yaml here,
# at parse time, so an unknown key or a bad value stops the run before any job starts.
#
# Under a cluster executor every job parses this file again inside its allocation: the slurm
# plugin's batch script runs `snakemake --mode remote`, and that runs it once more through srun.
# Those processes only run their one job, so the checks and writes that guard the whole run are
# the submitting process's alone (MAIN_PROCESS below): the CelebA manifest write (jobs on several
# nodes would race on one file), the dSprites md5 and the integrity scan of every output (a job
# must not refuse because of a file the submitting run is about to rebuild), and the notes and
# GPU-pool line printed for the user. Validation and path set-up run everywhere: reading only.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from mmjsd import gpu as G
from mmjsd import paths as P
from mmjsd.config import cli_prefix, deep_merge, held_out_sizes, read_yaml, resolve, validate_raw
from mmjsd.steps import code_paths, step_params
from mmjsd.data.celeba import check_folder as check_celeba_folder
from mmjsd.data.celeba import validate_folder as validate_celeba_folder
from mmjsd.data.manifest import refresh_manifest as refresh_celeba_manifest
from mmjsd.data.dsprites import verify_official
from mmjsd.errors import ConfigError, DataError, MmjsdError, from_os_error
from mmjsd.integrity import snakemake_request
from mmjsd.schedule import train_priority

# No `conda:` directive: every rule calls this repository's own `mmjsd`, so the one environment
# is the one Snakemake runs in (.venv from requirements.txt, or `conda env create -f
# environment.yml` from the repository root). A per-rule environment file could not install the
# package (Snakemake copies it elsewhere, where `-r requirements.txt` and `-e .` do not resolve),
# and a named environment makes Snakemake call `conda` on every run, also without --sdm conda.
# `make lint` accepts that one lint for this reason (workflow/lint.py).

# False in a process that runs one job for a cluster executor (`--mode remote` or `subprocess`).
MAIN_PROCESS = workflow.is_main_process


def _config_file():
    """config.yaml, or the one file given with `--configfile` (validated the same way)."""
    given = [Path(p) for p in (workflow.overwrite_configfiles or [])]
    if len(given) > 1:
        raise ConfigError(f"{len(given)} files given with --configfile", "give one complete config file (a copy of config.yaml, edited)")
    if not given:
        return "config.yaml"
    path = given[0].resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _load_validated_config(config_file):
    base = read_yaml(config_file)
    if config_file != "config.yaml":
        # Snakemake merged the file onto config.yaml; the pipeline reads it alone, so it must be whole.
        expected = deep_merge(read_yaml("config.yaml"), base)
        missing = sorted(set(read_yaml("config.yaml")) - set(base) - {"scales"})
        if missing:
            raise ConfigError(
                f"--configfile {config_file} lacks the key(s) {', '.join(missing)}: every step reads this one file",
                f"start from a copy of config.yaml (cp config.yaml {config_file}) and edit it, or add a scale under 'scales:' in config.yaml",
            )
    else:
        expected = base
    overrides = {k for k, v in config.items() if k != "scale" and v != expected.get(k)}
    if overrides:
        raise ConfigError(
            f"only 'scale' may be set with --config (got {', '.join(sorted(overrides))})",
            "put other changes in a copy of config.yaml and pass it with --configfile FILE, "
            "or add a scale overlay under 'scales:' and select it with --config scale=NAME",
        )
    try:
        validate_raw(base)
        # `--config scale=` leaves None in place of the file's `scale: paper`: an empty scale, refused
        resolved = resolve(base, "" if config.get("scale") is None else config["scale"])
    except ConfigError as exc:
        if config_file == "config.yaml":
            raise
        raise ConfigError(f"{config_file}: {exc.problem}", exc.fix.replace("config.yaml", config_file, 1)) from None
    if not MAIN_PROCESS:
        return resolved
    celeba = resolved["data"]["celeba"]
    if "celeba" in resolved["datasets"]:
        if celeba["source"] == "folder":
            check_celeba_folder(celeba["root"])
        elif celeba["source"] == "auto":
            # Say which data the demo gets: a silent fallback would pass procedural faces off as CelebA.
            chosen = P.celeba_source(resolved)
            if chosen == "synthetic":
                fit = min(held_out_sizes(celeba["synthetic_count"], celeba["test_fraction"], celeba["val_fraction"]))
                short = fit < resolved["eval"]["latent_fit_samples"]
                print(f"mmjsd: note: CelebA source 'auto': no images in {celeba['root']}/img_align_celeba, so CelebA is "
                      f"the procedural stand-in (synthetic faces, labelled 'synthetic' in every output)"
                      + (f"; its {celeba['synthetic_count']} faces leave {fit} rows to the latent probe, fewer than "
                         f"eval.latent_fit_samples ({resolved['eval']['latent_fit_samples']})" if short else ""), file=sys.stderr)
            else:
                print(f"mmjsd: note: CelebA source 'auto': using the real images in {celeba['root']}", file=sys.stderr)
        if P.celeba_source(resolved) == "folder":
            # A folder of the user's (no job writes it) is tracked by its content; `prepare` depends on its manifest,
            # rewritten only when the content changed (a file edited in place leaves the folder's
            # mtime alone). Computing it also stops the run here on a zero-byte or looping image.
            # A changed folder is validated as `prepare` would read it before its new manifest is
            # written (Snakemake deletes prepare's outputs before running it); a dry run writes nothing.
            dry_run, _, _ = snakemake_request(sys.argv)
            splits = [P.processed(resolved, "celeba", split) for split in P.SPLITS]

            def validate_changed_folder():
                if any(split.exists() for split in splits):
                    try:
                        validate_celeba_folder(celeba["root"], celeba["max_images"])
                    except DataError as exc:
                        raise DataError(f"{exc.problem}; no job was started, so the processed CelebA splits were kept",
                                        exc.fix) from None

            if refresh_celeba_manifest(celeba["root"], P.fill(P.CELEBA_MANIFEST, resolved), dry_run,
                                       validate_changed_folder) and dry_run:
                print(f"mmjsd: note: the CelebA folder {celeba['root']} changed since its manifest was written: a real "
                      f"run reruns `prepare` and what follows (a dry run writes no manifest, so the plan below omits them)",
                      file=sys.stderr)
    # A corrupt official dSprites file already on disk stops the run here, before any job
    # (Snakemake would delete the outputs of a job that reruns and fails).
    official = P.dsprites_input(resolved)
    if "dsprites" in resolved["datasets"] and resolved["data"]["dsprites"]["source"] == "official" and official.exists():
        verify_official(official)
    # Likewise a damaged processed split, model or classifier (src/mmjsd/integrity.py).
    from mmjsd.integrity import check_outputs

    check_outputs(resolved, config_file, sys.argv)
    return resolved


try:
    CONFIG_FILE = _config_file()
    CFG = _load_validated_config(CONFIG_FILE)
except MmjsdError as exc:
    sys.exit(f"mmjsd: error: {exc}")
except OSError as exc:      # a file or folder in the way of a parse-time read or write (the CelebA manifest)
    sys.exit(f"mmjsd: error: {from_os_error(exc)}")

SCALE = CFG["scale"]
DATA = CFG["paths"]["data"]
RESULTS = CFG["paths"]["results"]
# Every rule is one call of this CLI with the same configuration arguments.
MMJSD = cli_prefix(CFG, CONFIG_FILE)


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
        if MAIN_PROCESS:
            print(f"mmjsd: GPU pool: {resources['gpu_units'].value // G.UNITS_PER_GPU} device(s) from {origin}"
                  f" = {resources['gpu_units'].value} gpu_units; a job takes resources.gpu_share x 100"
                  f" ({', '.join(f'{d} {G.config_share(CFG, d):g}' for d in CFG['datasets'])})", file=sys.stderr)
    return resources["gpu_units"].value


GPU_POOL = _gpu_pool()


def gpu_units(wildcards):
    """The `gpu_units` one job of this dataset asks for (its share of a device in hundredths)."""
    return G.job_gpu_units(G.config_share(CFG, wildcards.dataset), GPU_POOL)


def config_scales():
    """The scale names the config file offers (paper, the base, and its overlays)."""
    return ["paper", *(read_yaml(CONFIG_FILE).get("scales") or {})]


def pattern(template):
    """A path template with the data/results roots filled in and the rest left as wildcards."""
    return template.replace("{data}", DATA).replace("{results}", RESULTS)


def run_targets(template):
    return expand(pattern(template), dataset=CFG["datasets"], model=CFG["models"], seed=CFG["seeds"])


def settings(step, wildcards=None):
    """The config keys `step` reads (STEP_PARAMS in src/mmjsd/steps.py, which dvc.yaml uses too)
    as a params value, so that Snakemake reruns the job exactly when one of them changes."""
    return step_params(CFG, step, getattr(wildcards, "dataset", None))


def prepare_raw(wildcards):
    """What `prepare --input` reads: the dSprites npz or the CelebA folder."""
    if wildcards.dataset == "dsprites":
        return str(P.dsprites_input(CFG))
    return str(P.celeba_input(CFG))


def prepare_input(wildcards):
    """What Snakemake tracks for it: the raw file, a folder that a rule writes, or, for a CelebA
    folder of the user's (`source: folder`), the manifest of its content (written at parse time)."""
    if wildcards.dataset == "celeba" and P.celeba_source(CFG) == "folder":
        return pattern(P.CELEBA_MANIFEST)
    return prepare_raw(wildcards)


def table_outputs():
    outputs = {
        "table": report(pattern(P.TABLE1), caption="../report/table1.rst", category="Table 1"),
        "markdown": pattern(P.TABLE1_MD),
        "metrics": pattern(P.METRICS),
    }
    if "celeba" in CFG["datasets"]:
        outputs["celeba"] = report(pattern(P.TABLE1_CELEBA), caption="../report/table1_celeba.rst", category="Table 1")
    return outputs

