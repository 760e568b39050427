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
