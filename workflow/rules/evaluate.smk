rule evaluate:
    """One checkpoint under its plan of selection methods and ratios (adaptive_retention.plan): a bundle JSON of
    every result, each carrying the run's identity, and one JSON per (method, ratio) in eval/ beside it."""
    input:
        run=rules.train.output.run,
        config=rules.run_config.output.evaluate,
        prepared=lambda wc: data_manifest(RUNS[wc.run].task),
    output:
        bundle=f"{RESULTS}/{{run}}/eval.json",
        examples=f"{RESULTS}/{{run}}/kept_examples.json",
    log:
        "logs/evaluate/{run}.log",
    benchmark:
        "benchmarks/evaluate/{run}.tsv"
    threads: res("evaluate", "threads")
    priority: run_priority
    resources:
        gpu=lambda wc: res("evaluate", "gpu"),
        runtime=lambda wc: res("evaluate", "runtime"),
        mem_mb=lambda wc: res("evaluate", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        checkpoint=lambda wc, input: str(Path(input.run).parent),
        per_ratio=lambda wc: f"{RESULTS}/{wc.run}/eval",
    shell:
        f"{OFFLINE_JOB} {TORCH_THREADS} " "{params.ar} evaluate --checkpoint {params.checkpoint:q} --config {input.config:q} --out {params.per_ratio:q} "
        "--bundle {output.bundle:q} --examples-out {output.examples:q} --quiet > {log:q} 2>&1"
