# Training: one job per model x dataset x seed. `gpu_units` (common.smk) counts shares of a GPU;
# `mmjsd train` claims a free device itself (src/mmjsd/gpu.py) and falls back to the CPU.


rule train:
    input:
        pattern(P.PROCESSED.replace("{split}", "train")),
        code=code_paths("train"),
    output:
        model=pattern(P.RUN_MODEL),
        metrics=pattern(P.RUN_METRICS),
        curve=pattern(P.RUN_CURVE),
        summary=pattern(P.RUN_SUMMARY),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("train", wildcards),
    threads: CFG["train"]["threads"]
    # The longest jobs first (src/mmjsd/schedule.py): started last, one training job ran alone
    # for minutes at the end while the other cores idled.
    priority: lambda wildcards: train_priority(CFG, wildcards.dataset, wildcards.model)
    resources:
        runtime=CFG["resources"]["train"]["runtime_min"],
        mem_mb=CFG["resources"]["train"]["mem_mb"],
        gpu_units=gpu_units,
    log:
        f"logs/{SCALE}/train_{{dataset}}_{{model}}_seed{{seed}}.log",
    shell:
        "{params.cli} train --dataset {wildcards.dataset} --model {wildcards.model} --seed {wildcards.seed}"
        " --threads {threads} > {log:q} 2>&1"
