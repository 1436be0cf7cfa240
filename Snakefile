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
    print(f"mmjsd: per-job progress (epoch, samples/s, ETA): `mmjsd --scale {SCALE} status` in another terminal; "
          f"logs in logs/{SCALE}/", file=sys.stderr)


# Light or network-bound steps run on the submitting host under a cluster executor; training,
# classifiers and evaluation go to the cluster (profiles/slurm).
localrules:
    all,
    dsprites_download,
    dsprites_render,
    celeba_download,
    celeba_synthesize,
    aggregate,
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
