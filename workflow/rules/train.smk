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
    Rewritten (and the run redone) when the plan's values for it change."""
    output:
        train=f"{RESULTS}/{{run}}/train_config.json",
        evaluate=f"{RESULTS}/{{run}}/eval_config.json",
    log:
        "logs/run_config/{run}.log",
    params:
        train=lambda wc: RUNS[wc.run].train,
        evaluate=lambda wc: RUNS[wc.run].evaluate,
    run:
        write_json(output.train, params.train)
        write_json(output.evaluate, params.evaluate)


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
