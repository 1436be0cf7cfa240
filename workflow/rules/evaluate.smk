# Evaluation: attribute classifiers (trained once per dataset and modality, shared by all
# models), per-run evaluation, aggregation into Table 1, Figure 1 and the report.
# Classifiers and evaluation claim a GPU share like training does (`gpu_units`, common.smk).


rule train_classifier:
    input:
        expand(pattern(P.PROCESSED), split=["train", "test"], allow_missing=True),
        code=code_paths("classifier"),
    output:
        classifier=pattern(P.CLASSIFIER),
        metrics=pattern(P.CLASSIFIER_METRICS),
        summary=pattern(P.CLASSIFIER_SUMMARY),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("train_classifier", wildcards),
    threads: CFG["train"]["threads"]
    resources:
        runtime=CFG["resources"]["train_classifier"]["runtime_min"],
        mem_mb=CFG["resources"]["train_classifier"]["mem_mb"],
        gpu_units=gpu_units,
    log:
        f"logs/{SCALE}/classifier_{{dataset}}_{{modality}}.log",
    shell:
        "{params.cli} train-classifier --dataset {wildcards.dataset} --modality {wildcards.modality}"
        " --threads {threads} > {log:q} 2>&1"


rule evaluate:
    input:
        model=pattern(P.RUN_MODEL),
        classifiers=expand(pattern(P.CLASSIFIER), modality=["img", "text"], allow_missing=True),
        splits=expand(pattern(P.PROCESSED), split=["test", "test_fit", "test_eval"], allow_missing=True),
        code=code_paths("evaluate"),
    output:
        record=pattern(P.RUN_EVAL),
        summary=pattern(P.RUN_EVAL_SUMMARY),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("evaluate", wildcards),
    threads: CFG["train"]["threads"]
    resources:
        runtime=CFG["resources"]["evaluate"]["runtime_min"],
        mem_mb=CFG["resources"]["evaluate"]["mem_mb"],
        gpu_units=gpu_units,
    log:
        f"logs/{SCALE}/evaluate_{{dataset}}_{{model}}_seed{{seed}}.log",
    shell:
        "{params.cli} evaluate --dataset {wildcards.dataset} --model {wildcards.model} --seed {wildcards.seed}"
        " --threads {threads} > {log:q} 2>&1"


rule aggregate:
    input:
        evals=run_targets(P.RUN_EVAL),
        metrics=run_targets(P.RUN_METRICS),
        code=code_paths("aggregate"),
    output:
        **table_outputs(),
    params:
        cli=MMJSD,
    log:
        f"logs/{SCALE}/aggregate.log",
    shell:
        "{params.cli} aggregate > {log:q} 2>&1"


rule plots:
    input:
        curves=run_targets(P.RUN_CURVE),
        tables=list(table_outputs().values()),
        code=code_paths("plots"),
    output:
        curves=report(pattern(P.PLOT_CURVES), caption="../report/plots.rst", category="Plots"),
        coherence=report(pattern(P.PLOT_COHERENCE), caption="../report/plots.rst", category="Plots"),
    params:
        cli=MMJSD,
    log:
        f"logs/{SCALE}/plots.log",
    shell:
        "{params.cli} plots > {log:q} 2>&1"


rule figure:
    input:
        expand(pattern(P.RUN_MODEL), dataset="celeba", model=CFG["models"], seed=CFG["eval"]["figure"]["seed"]),
        # eval.json: the conditioning gaps printed under each panel
        expand(pattern(P.RUN_EVAL), dataset="celeba", model=CFG["models"], seed=CFG["eval"]["figure"]["seed"]),
        pattern(P.PROCESSED).replace("{dataset}", "celeba").replace("{split}", "test"),
        code=code_paths("figure"),
    output:
        report(pattern(P.FIGURE1), caption="../report/figure1.rst", category="Figure 1"),
    params:
        cli=MMJSD,
        settings=settings("figure"),
    log:
        f"logs/{SCALE}/figure.log",
    shell:
        "{params.cli} figure > {log:q} 2>&1"


rule report:
    input:
        tables=list(table_outputs().values()),
        figure=[pattern(P.FIGURE1)] if "celeba" in CFG["datasets"] else [],
        classifiers=expand(pattern(P.CLASSIFIER_METRICS), dataset=CFG["datasets"], modality=["img", "text"]),
        code=code_paths("report"),
    output:
        report(pattern(P.REPORT), caption="../report/report.rst", category="Report"),
    params:
        cli=MMJSD,
    log:
        f"logs/{SCALE}/report.log",
    shell:
        "{params.cli} report > {log:q} 2>&1"
