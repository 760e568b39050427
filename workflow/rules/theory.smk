# The paper's seven formal claims checked with numbers (analysis/theory/*.py; SPEC §6), each seeded check once per
# seed in config["theory"]["seeds"] (results/theory/seed<s>/): a verdict counts only if every seed gives it.


rule theory_duality:
    """Prop. 1 (slackness) and Lemma 3 (duality gap): exact toy problems and the real runs' traces."""
    input:
        traces=retention_traces(),
    output:
        slack=report(f"{RESULTS}/theory/seed{{seed}}/slackness.json", category="Theory"),
        gap=report(f"{RESULTS}/theory/seed{{seed}}/duality_gap.json", category="Theory"),
        figure=report(f"{RESULTS}/theory/seed{{seed}}/slackness.png", caption="../report/theory.rst", category="Theory"),
    log:
        "logs/theory/duality_seed{seed}.log",
    benchmark:
        "benchmarks/theory/duality_seed{seed}.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        script=f"{ANALYSIS}.theory.duality",
        n=config["theory"]["n_problems"],
    shell:
        "{params.script} --out {output.slack:q} --out-gap {output.gap:q} --seed {wildcards.seed} --n-problems {params.n} --traces {input.traces:q} > {log:q} 2>&1"


rule theory_gradient_bias:
    """Lemma 1: Hard-Concrete vs exact Bernoulli gradient, by β."""
    output:
        verdict=f"{RESULTS}/theory/seed{{seed}}/gradient_bias.json",
        figure=report(f"{RESULTS}/theory/seed{{seed}}/gradient_bias.png", caption="../report/theory.rst", category="Theory"),
    log:
        "logs/theory/gradient_bias_seed{seed}.log",
    benchmark:
        "benchmarks/theory/gradient_bias_seed{seed}.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        script=f"{ANALYSIS}.theory.gradient_bias",
        n=config["theory"]["n_problems"],
        draws=config["theory"]["draws"],
    shell:
        "{params.script} --out {output.verdict:q} --seed {wildcards.seed} --n-problems {params.n} --draws {params.draws} > {log:q} 2>&1"


rule theory_variance:
    """Lemma 2: variance of the scorer gradient against the number of noise draws, on a real model and batch."""
    input:
        run=variance_checkpoint(),
    output:
        verdict=f"{RESULTS}/theory/seed{{seed}}/variance.json",
        figure=report(f"{RESULTS}/theory/seed{{seed}}/variance.png", caption="../report/theory.rst", category="Theory"),
    log:
        "logs/theory/variance_seed{seed}.log",
    benchmark:
        "benchmarks/theory/variance_seed{seed}.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        script=f"{ANALYSIS}.theory.variance",
        checkpoint=lambda wc, input: f"--checkpoint {shlex.quote(str(Path(input.run[0]).parent))}" if input.run else "",
        draws=config["theory"]["variance_draws"],
        data_dir=config["data_dir"],
    shell:
        "{params.script} --out {output.verdict:q} {params.checkpoint} --seed {wildcards.seed} --draws {params.draws} --data-dir {params.data_dir:q} > {log:q} 2>&1"


rule theory_timescales:
    """Prop. 2: which step-size ordering of the primal-dual updates converges."""
    input:
        traces=retention_traces(),
    output:
        verdict=f"{RESULTS}/theory/seed{{seed}}/timescales.json",
        figure=report(f"{RESULTS}/theory/seed{{seed}}/timescales.png", caption="../report/theory.rst", category="Theory"),
    log:
        "logs/theory/timescales_seed{seed}.log",
    benchmark:
        "benchmarks/theory/timescales_seed{seed}.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        script=f"{ANALYSIS}.theory.timescales",
        n=config["theory"]["n_problems"],
        steps=config["theory"]["timescale_steps"],
    shell:
        "{params.script} --out {output.verdict:q} --seed {wildcards.seed} --n-problems {params.n} --steps {params.steps} --traces {input.traces:q} > {log:q} 2>&1"


rule theory_generalisation:
    """Thm. 1: train/test gap against M/T under random retention (SST-2, frozen embeddings, logistic regression)."""
    output:
        verdict=f"{RESULTS}/theory/seed{{seed}}/generalisation.json",
        figure=report(f"{RESULTS}/theory/seed{{seed}}/generalisation.png", caption="../report/theory.rst", category="Theory"),
    log:
        "logs/theory/generalisation_seed{seed}.log",
    benchmark:
        "benchmarks/theory/generalisation_seed{seed}.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        script=f"{ANALYSIS}.theory.generalisation",
        n_train=config["theory"]["n_train"],
        data_dir=config["data_dir"],
    shell:
        "{params.script} --out {output.verdict:q} --seed {wildcards.seed} --n-train {params.n_train} --data-dir {params.data_dir:q} > {log:q} 2>&1"


rule theory_complexity:
    """Prop. 3: exponents of time and memory in T, from the efficiency length sweeps."""
    input:
        sweeps=length_sweeps(),
    output:
        verdict=f"{RESULTS}/theory/complexity.json",
        figure=report(f"{RESULTS}/theory/complexity.png", caption="../report/theory.rst", category="Theory"),
    log:
        "logs/theory/complexity.log",
    benchmark:
        "benchmarks/theory/complexity.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        script=f"{ANALYSIS}.theory.complexity",
    shell:
        "{params.script} --out {output.verdict:q} --sweeps {input.sweeps:q} > {log:q} 2>&1"


rule theory_summary:
    """The seven claims and their verdicts in one table, one verdict per seed and whether they agree."""
    input:
        seeded=expand(theory_seeded(), seed=config["theory"]["seeds"]),
        complexity=rules.theory_complexity.output.verdict,
    output:
        csv=report(f"{RESULTS}/theory/summary.csv", caption="../report/theory_summary.rst", category="Theory"),
        markdown=f"{RESULTS}/theory/summary.md",
    log:
        "logs/theory/summary.log",
    benchmark:
        "benchmarks/theory/summary.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        script=f"{ANALYSIS}.theory.summary",
    shell:
        "{params.script} {input:q} --csv {output.csv:q} --markdown {output.markdown:q} > {log:q} 2>&1"
