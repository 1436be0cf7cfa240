# Evaluation: attribute classifiers (trained once per dataset and modality, shared by all
# models), per-run evaluation, aggregation into Table 1, Figure 1 and the report.
# Classifiers and evaluation claim a GPU share like training does (`gpu_units`, common.smk).


rule train_classifier:
    input:
        unpack(job_inputs("train_classifier")),
    output:
        **job_outputs("train_classifier"),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("train_classifier", wildcards),
    threads: CFG["train"]["threads"]
    resources:
        **job_resources("train_classifier"),
    log:
        job_log("train_classifier"),
    shell:
        job_shell("train_classifier")


rule evaluate:
    input:
        unpack(job_inputs("evaluate")),
    output:
        **job_outputs("evaluate"),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("evaluate", wildcards),
    threads: CFG["train"]["threads"]
    resources:
        **job_resources("evaluate"),
    log:
        job_log("evaluate"),
    shell:
        job_shell("evaluate")


rule aggregate:
    input:
        unpack(job_inputs("aggregate")),
    output:
        **job_outputs("aggregate"),
    params:
        cli=MMJSD,
    log:
        job_log("aggregate"),
    shell:
        job_shell("aggregate")


rule plots:
    input:
        unpack(job_inputs("plots")),
    output:
        **job_outputs("plots"),
    params:
        cli=MMJSD,
    log:
        job_log("plots"),
    shell:
        job_shell("plots")


rule figure:
    input:
        unpack(job_inputs("figure")),
    output:
        **job_outputs("figure"),
    params:
        cli=MMJSD,
        settings=settings("figure"),
    log:
        job_log("figure"),
    shell:
        job_shell("figure")


rule report:
    input:
        unpack(job_inputs("report")),
    output:
        **job_outputs("report"),
    params:
        cli=MMJSD,
    log:
        job_log("report"),
    shell:
        job_shell("report")
