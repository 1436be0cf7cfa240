# Data: download or render the raw datasets, then build the processed bimodal splits.
# Every path in a shell line is quoted by Snakemake (`:q`, shlex): a config value never reaches the
# shell as code (`$(...)`, backticks, quotes, `;` and spaces stay part of the path).


rule dsprites_download:
    output:
        pattern(P.DSPRITES_RAW.replace("{source}", "official")),
    params:
        cli=MMJSD,
    log:
        f"logs/{SCALE}/dsprites_download.log",
    shell:
        "{params.cli} dsprites-download --out {output:q} > {log:q} 2>&1"


rule dsprites_render:
    input:
        code=code_paths("dsprites_render"),
    output:
        pattern(P.DSPRITES_RAW.replace("{source}", "render")),
    params:
        cli=MMJSD,
        settings=settings("dsprites_render"),
    log:
        f"logs/{SCALE}/dsprites_render.log",
    shell:
        "{params.cli} dsprites-render --out {output:q} > {log:q} 2>&1"


rule celeba_download:
    output:
        directory(pattern(P.CELEBA_TORCHVISION)),
    params:
        cli=MMJSD,
        root=lambda wildcards, output: str(Path(output[0]).parent),
    log:
        f"logs/{SCALE}/celeba_download.log",
    shell:
        "{params.cli} celeba-download --root {params.root:q} > {log:q} 2>&1"


rule celeba_synthesize:
    input:
        code=code_paths("celeba_synthesize"),
    output:
        directory(pattern(P.CELEBA_SYNTHETIC)),
    params:
        cli=MMJSD,
        settings=settings("celeba_synthesize"),
    log:
        f"logs/{SCALE}/celeba_synthesize.log",
    shell:
        "{params.cli} celeba-synthesize --out {output:q} > {log:q} 2>&1"


rule prepare:
    input:
        prepare_input,
        code=code_paths("prepare"),
    output:
        expand(pattern(P.PROCESSED), split=P.SPLITS, allow_missing=True),
    params:
        cli=MMJSD,
        settings=lambda wildcards: settings("prepare", wildcards),
        raw=prepare_raw,
        out_dir=lambda wildcards, output: str(Path(output[0]).parent),
    resources:
        runtime=CFG["resources"]["prepare"]["runtime_min"],
        mem_mb=CFG["resources"]["prepare"]["mem_mb"],
    log:
        f"logs/{SCALE}/prepare_{{dataset}}.log",
    shell:
        "{params.cli} prepare --dataset {wildcards.dataset} --input {params.raw:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
