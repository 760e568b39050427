rule efficiency:
    """Latency, throughput, peak memory and FLOPs (inference and a training step) of the plain model vs
    retention and the baseline selectors, variants timed in alternation in one process."""
    input:
        model=backbone_inputs(prepared_model(BENCH["model"])),
    output:
        report(f"{RESULTS}/efficiency/throughput.tsv", caption="../report/throughput.rst", category="Efficiency"),
    log:
        "logs/efficiency/throughput.log",
    benchmark:
        "benchmarks/efficiency/throughput.tsv"
    threads: res("benchmark", "threads")
    resources:
        gpu=lambda wc: res("benchmark", "gpu"),
        runtime=lambda wc: res("benchmark", "runtime"),
        mem_mb=lambda wc: res("benchmark", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: prepared_model(BENCH["model"]),
        lengths=" ".join(str(x) for x in BENCH["lengths"]),
        ratios=" ".join(str(x) for x in BENCH["ratios"]),
        modes=" ".join(BENCH["modes"]),
        selectors=" ".join(BENCH["selectors"]),
        batch=BENCH["batch_size"],
        repeats=BENCH["repeats"],
    shell:
        f"{TORCH_THREADS} " "{params.ar} bench --model {params.model:q} --lengths {params.lengths} --ratios {params.ratios} --modes {params.modes} "
        "--selectors {params.selectors} --batch-size {params.batch} --repeats {params.repeats} --quiet --out {output:q} > {log:q} 2>&1"


rule length_sweep:
    """Time and peak memory against sequence length for the plain model and retention, with fitted exponents,
    with SDPA (what users run) and eager attention (which stores the T×T matrix: the paper's Prop. 3)."""
    input:
        model=backbone_inputs(prepared_model(BENCH["model"])),
    output:
        table=report(f"{RESULTS}/efficiency/length_sweep_{{attn}}.tsv", caption="../report/length_sweep.rst", category="Efficiency"),
        fit=f"{RESULTS}/efficiency/length_fit_{{attn}}.json",
    log:
        "logs/efficiency/length_sweep_{attn}.log",
    benchmark:
        "benchmarks/efficiency/length_sweep_{attn}.tsv"
    wildcard_constraints:
        attn="sdpa|eager",
    threads: res("benchmark", "threads")
    resources:
        gpu=lambda wc: res("benchmark", "gpu"),
        runtime=lambda wc: res("benchmark", "runtime"),
        mem_mb=lambda wc: res("benchmark", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: prepared_model(BENCH["model"]),
        lengths=" ".join(str(x) for x in BENCH["sweep"]["lengths"]),
        ratios=" ".join(str(x) for x in BENCH["sweep"]["ratios"]),
        batch=BENCH["sweep"]["batch_size"],
        repeats=BENCH["sweep"]["repeats"],
    shell:
        f"{TORCH_THREADS} " "{params.ar} bench-sweep --model {params.model:q} --attn {wildcards.attn} --lengths {params.lengths} --ratios {params.ratios} "
        "--batch-size {params.batch} --repeats {params.repeats} --quiet --out {output.table:q} --fit {output.fit:q} > {log:q} 2>&1"
