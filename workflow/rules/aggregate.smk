rule aggregate:
    """Every evaluation bundle into one tidy table, and mean / std / 95 % CI over seeds."""
    input:
        [b for task in config["tasks"] for b in eval_bundles(task)],
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
        py=PY,
        script=ANALYSIS / "aggregate.py",
    shell:
        "{params.py} {params.script} {input} --tidy {output.tidy} --summary {output.summary} --markdown {output.markdown} > {log} 2>&1"


rule tables:
    """Tables 1-2 (quality at 50 % / 30 %, the paper's values beside ours), 3 (ablations), 4 (compute), 5 (kept per block)."""
    input:
        summary=rules.aggregate.output.summary,
        evals=[b for task in config["tasks"] for b in eval_bundles(task)],
        efficiency=[f"{RESULTS}/efficiency/throughput.tsv"] if config["benchmark"]["enabled"] else [],
    output:
        **{f"table{n}": report(f"{RESULTS}/tables/{name}.csv", caption="../report/tables.rst", category="Tables")
           for n, name in TABLES.items()},
    log:
        "logs/tables.log",
    benchmark:
        "benchmarks/tables.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        py=PY,
        script=ANALYSIS / "tables.py",
        out_dir=lambda wc, output: str(Path(output.table1).parent),
        efficiency=lambda wc, input: f"--efficiency {input.efficiency[0]}" if input.efficiency else "",
    shell:
        "{params.py} {params.script} --summary {input.summary} --evals {input.evals} {params.efficiency} "
        "--out-dir {params.out_dir} > {log} 2>&1"


rule figures:
    """The Pareto figure, Figure 2 (sensitivity) and what learned retention keeps on real inputs."""
    input:
        tidy=rules.aggregate.output.tidy,
        efficiency=[f"{RESULTS}/efficiency/throughput.tsv"] if config["benchmark"]["enabled"] else [],
        examples=[f"{RESULTS}/{t}/{budget_name(min(config['budgets']))}/seed{config['seeds'][0]}/kept_examples.json" for t in config["tasks"]],
    output:
        pareto=report(f"{RESULTS}/figures/pareto.png", caption="../report/pareto.rst", category="Figures"),
        kept=[report(f"{RESULTS}/figures/kept_{t}.png", caption="../report/kept.rst", category="Figures") for t in config["tasks"]],
        sensitivity=[report(f"{RESULTS}/figures/sensitivity.png", caption="../report/sensitivity.rst", category="Figures")]
        if STUDY["enabled"] else [],
    log:
        "logs/figures.log",
    benchmark:
        "benchmarks/figures.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        py=PY,
        script=ANALYSIS / "figures.py",
        out_dir=lambda wc, output: str(Path(output.pareto).parent),
        efficiency=lambda wc, input: f"--efficiency {input.efficiency[0]}" if input.efficiency else "",
        caption=f"'{CAPTION}'",
    shell:
        "{params.py} {params.script} --tidy {input.tidy} {params.efficiency} --examples {input.examples} "
        "--caption {params.caption} --out-dir {params.out_dir} > {log} 2>&1"
