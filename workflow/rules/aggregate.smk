rule aggregate:
    """Every evaluation bundle into one tidy table, and mean / std / 95 % CI over seeds."""
    input:
        eval_bundles(),
    output:
        tidy=f"{RESULTS}/tables/tidy.csv",
        summary=report(f"{RESULTS}/tables/summary.csv", caption="../report/summary.rst", category="Tables"),
        markdown=f"{RESULTS}/tables/summary.md",
    log:
        "logs/aggregate.log",
    benchmark:
        "benchmarks/aggregate.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        analysis=ANALYSIS,
    shell:
        "{params.analysis}.aggregate {input:q} --tidy {output.tidy:q} --summary {output.summary:q} --markdown {output.markdown:q} > {log:q} 2>&1"


rule tables:
    """Quality at each trained budget (the paper's values beside ours: its Tables 1-2), ablations (Table 3), compute
    (Table 4), kept fraction per block (Table 5)."""
    input:
        summary=rules.aggregate.output.summary,
        evals=eval_bundles(),
        efficiency=[f"{RESULTS}/efficiency/throughput.tsv"] if config["benchmark"]["enabled"] else [],
    output:
        **{name: report(f"{RESULTS}/tables/{name}.csv", caption="../report/tables.rst", category="Tables") for name in TABLES},
    log:
        "logs/tables.log",
    benchmark:
        "benchmarks/tables.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        analysis=ANALYSIS,
        budgets=" ".join(f"{b:g}" for b in PLAN.budgets),
        out_dir=lambda wc, output: str(Path(output[0]).parent),
        efficiency=lambda wc, input: f"--efficiency {shlex.quote(input.efficiency[0])}" if input.efficiency else "",
    shell:
        "{params.analysis}.tables --summary {input.summary:q} --evals {input.evals:q} --budgets {params.budgets} {params.efficiency} "
        "--out-dir {params.out_dir:q} > {log:q} 2>&1"


rule figures:
    """The Pareto figure, Figure 2 (sensitivity) and what learned retention keeps on real inputs."""
    input:
        tidy=rules.aggregate.output.tidy,
        efficiency=[f"{RESULTS}/efficiency/throughput.tsv"] if config["benchmark"]["enabled"] else [],
        examples=run_files(shown_runs(), "kept_examples.json"),
    output:
        pareto=report(f"{RESULTS}/figures/pareto.png", caption="../report/pareto.rst", category="Figures"),
        kept=[report(f"{RESULTS}/figures/kept_{t}.png", caption="../report/kept.rst", category="Figures") for t in PLAN.tasks],
        sensitivity=[report(f"{RESULTS}/figures/sensitivity.png", caption="../report/sensitivity.rst", category="Figures")]
        if PLAN.study_task else [],
    log:
        "logs/figures.log",
    benchmark:
        "benchmarks/figures.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        analysis=ANALYSIS,
        out_dir=lambda wc, output: str(Path(output.pareto).parent),
        efficiency=lambda wc, input: f"--efficiency {shlex.quote(input.efficiency[0])}" if input.efficiency else "",
        caption=CAPTION,
    shell:
        "{params.analysis}.figures --tidy {input.tidy:q} {params.efficiency} --examples {input.examples:q} "
        "--caption {params.caption:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
