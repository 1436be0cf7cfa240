# Data: download or render the raw datasets, then build the processed bimodal splits.
# Every path in a shell line is quoted by Snakemake (`:q`, shlex; mmjsd.pipeline.jobs.shell_command): a
# config value never reaches the shell as code (`$(...)`, backticks, quotes, `;` and spaces stay
# part of the path).


rule dsprites_download:
    output:
        **job_outputs("dsprites_download"),
    params:
        cli=MMJSD,
    log:
        job_log("dsprites_download"),
    shell:
        job_shell("dsprites_download")


rule dsprites_render:
    input:
        unpack(job_inputs("dsprites_render")),
    output:
        **job_outputs("dsprites_render"),
    params:
        cli=MMJSD,
        settings=settings("dsprites_render"),
    log:
        job_log("dsprites_render"),
    shell:
        job_shell("dsprites_render")


rule celeba_download:
    output:
        **job_outputs("celeba_download"),
    params:
        cli=MMJSD,
        root=lambda wildcards, output: str(Path(output[0]).parent),
    log:
        job_log("celeba_download"),
    shell:
        job_shell("celeba_download")


rule celeba_synthesize:
    input:
        unpack(job_inputs("celeba_synthesize")),
    output:
        **job_outputs("celeba_synthesize"),
    params:
        cli=MMJSD,
        settings=settings("celeba_synthesize"),
    log:
        job_log("celeba_synthesize"),
    shell:
        job_shell("celeba_synthesize")


rule prepare:
    input:
        unpack(job_inputs("prepare")),
    output:
        **job_outputs("prepare"),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("prepare", wildcards),
        raw=lambda wildcards: str(raw_input(CFG, wildcards.dataset)),
        out_dir=lambda wildcards, output: str(Path(output[0]).parent),
    resources:
        **job_resources("prepare"),
    log:
        job_log("prepare"),
    shell:
        job_shell("prepare")
