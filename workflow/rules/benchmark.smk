rule throughput:
    """Inference throughput of the plain model vs retention, variants timed in alternation in one process."""
    input:
        model=lambda wc: ["resources/tiny-bert"] if config["benchmark"].get("model", config["model"]) == "resources/tiny-bert" else [],
    output:
        report(f"{RESULTS}/efficiency/throughput.tsv", caption="../report/throughput.rst", category="Efficiency"),
    log:
        "logs/efficiency/throughput.log",
    benchmark:
        "benchmarks/efficiency/throughput.tsv"
    threads: 2
    resources:
        gpu=lambda wc: res("benchmark", "gpu"),
        runtime=lambda wc: res("benchmark", "runtime"),
        mem_mb=lambda wc: res("benchmark", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=config["benchmark"].get("model", config["model"]),
        lengths=" ".join(str(x) for x in config["benchmark"]["lengths"]),
        ratios=" ".join(str(x) for x in config["benchmark"]["ratios"]),
        batch=config["benchmark"]["batch_size"],
        repeats=config["benchmark"]["repeats"],
    shell:
        "{params.ar} bench --model {params.model} --lengths {params.lengths} --ratios {params.ratios} "
        "--batch-size {params.batch} --repeats {params.repeats} --out {output} > {log} 2>&1"
