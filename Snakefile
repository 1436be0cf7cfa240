# mmJSD reproduction: Table 1 and Figure 1 of "Multimodal Generative Learning Utilizing
# Jensen-Shannon-Divergence" (Sutter, Daunhawer, Vogt).
#
#   snakemake all --cores 8 --resources gpu=2     # paper scale (config.yaml)
#   snakemake all --config scale=demo             # offline demo, minutes on a CPU
#
# Every rule is one call of the `mmjsd` CLI (src/mmjsd/cli.py) with a log under logs/<scale>/.


import sys


configfile: "config.yaml"


include: "workflow/rules/common.smk"

wildcard_constraints:
    dataset="dsprites|celeba",
    model="mmjsd|mmpoe",
    seed=r"\d+",
    modality="img|text",

include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


# A rerun empties a job's log: keep the previous run's logs as <name>.log.1 (.2, .3).
onstart:
    from mmjsd.files import rotate_logs

    # Before any job, and only in a run that executes them (no dry run, no --touch): the paper
    # scale needs a GPU, unless the jobs go to a cluster.
    refusal = G.cpu_paper_refusal(SCALE, workflow.local_exec and not workflow.touch, G.visible_gpus(),
                                  [job.rule.name for job in workflow.dag.needrun_jobs()], sorted(config_scales()))
    if refusal:
        print(refusal, file=sys.stderr)
        sys.exit(2)
    rotate_logs(f"logs/{SCALE}")
    # Under a cluster executor `--cores N` caps the threads of all jobs in flight together, and of
    # each job, at N; profiles/default (the workflow profile, loaded unless `--workflow-profile
    # none`) sets `cores: all`, this host's CPUs. The cap is silent otherwise.
    if not workflow.local_exec and workflow.resource_settings.cores is not None:
        cores = workflow.resource_settings.cores
        print(f"mmjsd: note: --cores {cores} (profiles/default's `cores: all` unless given) caps this cluster run at "
              f"{cores} threads in flight and per job; add `--workflow-profile none` to lift it "
              f"(docs/USAGE.md, \"Cluster (SLURM)\")", file=sys.stderr)
    print(f"mmjsd: per-job progress (epoch, samples/s, ETA): `mmjsd --scale {SCALE} status` in another terminal; "
          f"logs in logs/{SCALE}/", file=sys.stderr)


# Light or network-bound steps run on the submitting host under a cluster executor; prepare,
# training, classifiers and evaluation go to the cluster (profiles/slurm, profiles/slurm-cpu)
# with the requests of config.yaml's `resources:` for the scale.
localrules:
    all,
    dsprites_download,
    dsprites_render,
    celeba_download,
    celeba_synthesize,
    aggregate,
    plots,
    figure,
    report,


# The default target must live here, not in an included file.
rule all:
    input:
        rules.report.output,
        rules.aggregate.output,
        rules.plots.output,
        rules.figure.output if "celeba" in CFG["datasets"] else [],
    default_target: True
