# Training: one job per model x dataset x seed. `gpu_units` counts shares of a GPU; `mmjsd train`
# claims a free device itself (src/mmjsd/training/gpu.py) and falls back to the CPU.


rule train:
    input:
        unpack(job_inputs("train")),
    output:
        **job_outputs("train"),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("train", wildcards),
    threads: CFG["train"]["threads"]
    # The longest jobs first (src/mmjsd/pipeline/schedule.py): started last, one training job ran alone
    # for minutes at the end while the other cores idled.
    priority: lambda wildcards: train_priority(CFG, wildcards.dataset, wildcards.model)
    resources:
        **job_resources("train"),
    log:
        job_log("train"),
    shell:
        job_shell("train")
