"""What the Snakefile does besides declaring rules: two entry points, one per moment.

- `load(workflow, config)`, at parse time: the validated configuration of the chosen scale (one
  complete config file, `--config scale=NAME`), and, in the process that plans the run only
  (not in a cluster job's own process, which parses the Snakefile again to run its one job):
  the notes on the data in use, the CelebA manifest (not in a dry run), the dSprites md5 and
  the scan of every output on disk (mmjsd.pipeline.integrity.check_outputs). Reading only, except the
  manifest, which a real run writes when the folder's content changed.
- `before_jobs(workflow, setup)`, from `onstart`: Snakemake has planned the jobs and deleted
  nothing yet. It refuses the paper scale on a CPU, checks what the planned jobs will read and
  replace (mmjsd.pipeline.integrity.check_planned), and rotates the logs.

Snakemake's command line (dry run, forced files) is read with Snakemake's own parser
(`snakemake_request`): at parse time Snakemake 9 gives a Snakefile no access to it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mmjsd.config import cli_prefix, deep_merge, held_out_sizes, read_yaml, resolve, validate_raw
from mmjsd.core import paths as P
from mmjsd.core.files import rotate_logs
from mmjsd.data.celeba import check_folder as check_celeba_folder
from mmjsd.data.celeba import validate_folder as validate_celeba_folder
from mmjsd.data.dsprites import verify_official
from mmjsd.data.manifest import refresh_manifest as refresh_celeba_manifest
from mmjsd.errors import ConfigError, DataError, MmjsdError, from_os_error
from mmjsd.pipeline.integrity import check_outputs, check_planned
from mmjsd.pipeline.jobs import STEPS
from mmjsd.training import gpu as G


@dataclass(frozen=True)
class Request:
    """What a Snakemake command line asks for, as far as the start-up checks care."""
    dry_run: bool = False
    force_all: bool = False
    forced: frozenset = frozenset()      # resolved paths given to --forcerun / -R


def snakemake_request(argv: list[str]) -> Request:
    """The request of a `snakemake ...` command line, read with Snakemake's own parser (profiles
    included). Another program's command line (a test calling the API) asks for nothing."""
    if not argv or "snakemake" not in argv[0]:
        return Request()
    from snakemake.cli import parse_args

    try:
        with contextlib.redirect_stdout(io.StringIO()):    # it prints which profile it read
            _, args = parse_args(argv[1:])
    except (SystemExit, Exception):     # Snakemake itself reports a command line it cannot read
        return Request()
    forced = frozenset(Path(p).resolve() for p in (args.forcerun or ()) if not _is_rule(p))
    return Request(bool(args.dryrun), bool(args.forceall), forced)


def _is_rule(target: str) -> bool:
    """A --forcerun value naming a rule rather than a file (Snakemake accepts both)."""
    return target in STEPS


# --- the paper scale on a machine with no GPU -----------------------------------------------------
ALLOW_CPU_PAPER = "MMJSD_ALLOW_CPU_PAPER"    # set to 1 to train the paper scale on CPUs anyway


def cpu_paper_refusal(scale: str, local: bool, gpus: list[str], steps: list[str], scales: list[str]) -> str | None:
    """The one-line error for a local run that would train at the paper scale with no GPU, else None.

    Only a run that executes jobs on this machine counts: a dry run, or a cluster submit host (which
    has no GPU of its own) sending the jobs to GPU nodes, plans and submits as before."""
    device_jobs = [step for step in steps if step in STEPS and STEPS[step].device]   # the job table's GPU-capable steps
    if scale != "paper" or not local or gpus or not device_jobs or os.environ.get(ALLOW_CPU_PAPER) == "1":
        return None
    fitting = ", ".join(f"--config scale={name}" for name in scales if name != "paper")
    return (f"mmjsd: error: the paper scale would run {len(device_jobs)} training, classifier and evaluation job(s) on "
            f"this machine, which has no GPU (weeks of CPU time) -- fix: choose a scale that fits a CPU ({fitting}), "
            f"run on a GPU machine or a cluster (--profile profiles/slurm), or force it with {ALLOW_CPU_PAPER}=1")


@dataclass(frozen=True)
class Setup:
    config_file: str          # config.yaml, or the one file given with --configfile
    config: dict              # resolved for the chosen scale
    cli: str                  # the start of every rule's command (mmjsd.config.cli_prefix)
    main_process: bool        # False in a cluster job's own process

    @property
    def scale(self) -> str:
        return self.config["scale"]


def _config_file(workflow) -> str:
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


def _resolved_config(config_file: str, overrides: dict) -> dict:
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
    changed = {k for k, v in overrides.items() if k != "scale" and v != expected.get(k)}
    if changed:
        raise ConfigError(
            f"only 'scale' may be set with --config (got {', '.join(sorted(changed))})",
            "put other changes in a copy of config.yaml and pass it with --configfile FILE, "
            "or add a scale overlay under 'scales:' and select it with --config scale=NAME",
        )
    try:
        validate_raw(base)
        # `--config scale=` leaves None in place of the file's `scale: paper`: an empty scale, refused
        return resolve(base, "" if overrides.get("scale") is None else overrides["scale"])
    except ConfigError as exc:
        if config_file == "config.yaml":
            raise
        raise ConfigError(f"{config_file}: {exc.problem}", exc.fix.replace("config.yaml", config_file, 1)) from None


def _celeba_notes(resolved: dict, request: Request) -> None:
    """Say which CelebA data the run gets, and keep the manifest of a user's folder current."""
    celeba = resolved["data"]["celeba"]
    if celeba["source"] == "folder":
        check_celeba_folder(celeba["root"])
    elif celeba["source"] == "auto":
        # A silent fallback would pass procedural faces off as CelebA.
        if P.celeba_source(resolved) == "synthetic":
            fit = min(held_out_sizes(celeba["synthetic_count"], celeba["test_fraction"], celeba["val_fraction"]))
            short = fit < resolved["eval"]["latent_fit_samples"]
            print(f"mmjsd: note: CelebA source 'auto': no images in {celeba['root']}/img_align_celeba, so CelebA is "
                  f"the procedural stand-in (synthetic faces, labelled 'synthetic' in every output)"
                  + (f"; its {celeba['synthetic_count']} faces leave {fit} rows to the latent probe, fewer than "
                     f"eval.latent_fit_samples ({resolved['eval']['latent_fit_samples']})" if short else ""), file=sys.stderr)
        else:
            print(f"mmjsd: note: CelebA source 'auto': using the real images in {celeba['root']}", file=sys.stderr)
    if P.celeba_source(resolved) != "folder":
        return
    # A folder of the user's (no job writes it) is tracked by its content: `prepare` depends on its
    # manifest, rewritten only when the content changed (a file edited in place leaves the folder's
    # mtime alone). Computing it also stops the run here on a zero-byte or looping image. A changed
    # folder is validated as `prepare` would read it before its new manifest is written (Snakemake
    # deletes prepare's outputs before running it); a dry run writes nothing.
    splits = [P.processed(resolved, "celeba", split) for split in P.SPLITS]

    def validate_changed_folder():
        if any(split.exists() for split in splits):
            try:
                validate_celeba_folder(celeba["root"], celeba["max_images"])
            except DataError as exc:
                raise DataError(f"{exc.problem}; no job was started, so the processed CelebA splits were kept", exc.fix) from None

    if refresh_celeba_manifest(celeba["root"], P.fill(P.CELEBA_MANIFEST, resolved), request.dry_run,
                               validate_changed_folder) and request.dry_run:
        print(f"mmjsd: note: the CelebA folder {celeba['root']} changed since its manifest was written: a real "
              f"run reruns `prepare` and what follows (a dry run writes no manifest, so the plan below omits them)",
              file=sys.stderr)


def _load(workflow, overrides: dict, argv: list[str]) -> Setup:
    config_file = _config_file(workflow)
    resolved = _resolved_config(config_file, overrides)
    main = workflow.is_main_process
    if main:
        request = snakemake_request(argv)
        if "celeba" in resolved["datasets"]:
            _celeba_notes(resolved, request)
        # A corrupt official dSprites file already on disk stops the run here, before any job.
        official = P.dsprites_input(resolved)
        if "dsprites" in resolved["datasets"] and resolved["data"]["dsprites"]["source"] == "official" and official.exists():
            verify_official(official)
        # Likewise a damaged output, a model in another run's slot, an interrupted job (mmjsd.pipeline.integrity).
        check_outputs(resolved, config_file, request.force_all, request.forced)
    return Setup(config_file, resolved, cli_prefix(resolved, config_file), main)


def load(workflow, overrides: dict, argv: list[str] | None = None) -> Setup:
    """The Snakefile's set-up (module docstring); a refusal exits with one line, no traceback."""
    try:
        return _load(workflow, overrides, sys.argv if argv is None else argv)
    except MmjsdError as exc:
        sys.exit(f"mmjsd: error: {exc}")
    except OSError as exc:      # a file or folder in the way of a parse-time read or write (the CelebA manifest)
        sys.exit(f"mmjsd: error: {from_os_error(exc)}")


def scale_names(config_file: str) -> list[str]:
    """The scale names the config file offers (paper, the base, and its overlays)."""
    return ["paper", *(read_yaml(config_file).get("scales") or {})]


def gpu_pool(workflow, setup: Setup) -> int:
    """The scheduler's pool of `gpu_units` (hundredths of a device, mmjsd.training.gpu): `--resources gpu=N`
    means N devices; without it, the visible GPUs. Set once on Snakemake's global resources."""
    from snakemake.resources import Resource

    resources = workflow.global_resources
    if "gpu_units" not in resources:
        requested = resources["gpu"].value if "gpu" in resources else None
        visible = len(G.visible_gpus())
        resources["gpu_units"] = Resource("gpu_units", G.snakemake_gpu_units(requested, visible))
        origin = f"--resources gpu={requested}" if requested is not None else f"{visible} visible GPU(s)"
        if setup.main_process:
            print(f"mmjsd: GPU pool: {resources['gpu_units'].value // G.UNITS_PER_GPU} device(s) from {origin}"
                  f" = {resources['gpu_units'].value} gpu_units; a job takes resources.gpu_share x 100"
                  f" ({', '.join(f'{d} {G.config_share(setup.config, d):g}' for d in setup.config['datasets'])})",
                  file=sys.stderr)
    return resources["gpu_units"].value


def before_jobs(workflow, setup: Setup) -> None:
    """`onstart`: Snakemake has planned the jobs of a real run and deleted nothing yet."""
    planned = list(workflow.dag.needrun_jobs())
    scale = setup.scale
    # The paper scale needs a GPU, unless the jobs go to a cluster (or are only touched).
    refusal = cpu_paper_refusal(scale, workflow.local_exec and not workflow.touch, G.visible_gpus(),
                                  [job.rule.name for job in planned], sorted(scale_names(setup.config_file)))
    if refusal:
        print(refusal, file=sys.stderr)
        sys.exit(2)
    if not workflow.touch:
        try:
            check_planned(setup.config, setup.config_file,
                          [(job.rule.name, [Path(f) for f in job.input], [Path(f) for f in job.output]) for job in planned])
        except MmjsdError as exc:
            sys.exit(f"mmjsd: error: {exc}")
    # A rerun empties a job's log: keep the previous run's logs as <name>.log.1 (.2, .3).
    rotate_logs(f"logs/{scale}")
    # Under a cluster executor `--cores N` caps the threads of all jobs in flight together, and of
    # each job, at N; profiles/default (the workflow profile, loaded unless `--workflow-profile
    # none`) sets `cores: all`, this host's CPUs. The cap is silent otherwise.
    if not workflow.local_exec and workflow.resource_settings.cores is not None:
        cores = workflow.resource_settings.cores
        print(f"mmjsd: note: --cores {cores} (profiles/default's `cores: all` unless given) caps this cluster run at "
              f"{cores} threads in flight and per job; add `--workflow-profile none` to lift it "
              f"(docs/USAGE.md, \"Cluster (SLURM)\")", file=sys.stderr)
    print(f"mmjsd: per-job progress (epoch, samples/s, ETA): `mmjsd --scale {scale} status` in another terminal; "
          f"logs in logs/{scale}/", file=sys.stderr)
