rule make_tiny_model:
    output:
        directory(TINY),
    log:
        "logs/make_tiny_model.log",
    benchmark:
        "benchmarks/make_tiny_model.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
    shell:
        "{params.ar} make-tiny-model --out {output:q} > {log:q} 2>&1"


localrules:
    run_config,


rule run_config:
    """A run's resolved training and evaluation configs, from the plan (adaptive_retention.plan): what its jobs read.
    Rewritten (and the run redone) when the plan's values for it change. A shell rule, not `run:`: Snakemake runs a
    `run:` job in a fresh process that parses the whole workflow again (11 s a job on 2 cores, 27 of them in the
    default run, and every training job waits on one)."""
    output:
        train=f"{RESULTS}/{{run}}/train_config.json",
        evaluate=f"{RESULTS}/{{run}}/eval_config.json",
    log:
        "logs/run_config/{run}.log",
    priority: run_priority  # its training job's: without it IMDb's full model waited for its config until 864 s
    params:
        train=lambda wc: json_text(RUNS[wc.run].train),
        evaluate=lambda wc: json_text(RUNS[wc.run].evaluate),
    conda:
        "../../envs/adaptive-retention.yaml"
    shell:
        "(printf '%s' {params.train:q} > {output.train:q}.tmp && mv {output.train:q}.tmp {output.train:q} && "
        "printf '%s' {params.evaluate:q} > {output.evaluate:q}.tmp && mv {output.evaluate:q}.tmp {output.evaluate:q}) 2> {log:q}"


rule train:
    """Fine-tune one run of the plan: the full model, learned retention at one budget, or a study run."""
    input:
        config=rules.run_config.output.train,
        prepared=run_inputs,
    output:
        run=f"{RESULTS}/{{run}}/model/run.json",
        trace=f"{RESULTS}/{{run}}/trace.tsv",
        summary=f"{RESULTS}/{{run}}/summary.json",
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/train/{run}.tsv"
    threads: res("train", "threads")
    priority: run_priority
    resources:
        gpu=lambda wc: res("train", "gpu"),
        runtime=lambda wc: res("train", "runtime"),
        mem_mb=lambda wc: res("train", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        out=lambda wc: f"{RESULTS}/{wc.run}",
    shell:
        f"{OFFLINE_JOB} {TORCH_THREADS} " "{params.ar} train --config {input.config:q} --out {params.out:q} --quiet > {log:q} 2>&1"
