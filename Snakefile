# mmJSD reproduction: Table 1 and Figure 1 of "Multimodal Generative Learning Utilizing
# Jensen-Shannon-Divergence" (Sutter, Daunhawer, Vogt).
#
#   snakemake all --cores 8 --resources gpu=2     # paper scale (config.yaml)
#   snakemake all --config scale=demo             # offline demo, minutes on a CPU
#
# Every rule is one call of the `mmjsd` CLI (src/mmjsd/cli.py) with a log under logs/<scale>/.


configfile: "config.yaml"


include: "workflow/rules/common.smk"

wildcard_constraints:
    dataset=one_of(CFG["datasets"]),
    model=one_of(CFG["models"]),
    seed=r"\d+",
    modality="img|text",

include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


# Jobs planned, nothing deleted yet: the checks of what they read and replace, then the logs'
# rotation (src/mmjsd/pipeline/startup.py).
onstart:
    startup.before_jobs(workflow, SETUP)


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
