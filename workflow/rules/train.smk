rule make_tiny_model:
    output:
        directory("resources/tiny-bert"),
    log:
        "logs/make_tiny_model.log",
    benchmark:
        "benchmarks/make_tiny_model.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
    shell:
        "{params.ar} make-tiny-model --out {output} > {log} 2>&1"


rule train:
    """Fine-tune one (task, variant, seed): the full model, learned retention at one budget, or a study run
    (r<ρ>-<ablation or β/γ/ζ value>, see common.smk: study_runs)."""
    input:
        model=lambda wc: ["resources/tiny-bert"] if model_of(wc.task) == "resources/tiny-bert" else [],
        prepared=lambda wc: prepared_inputs(wc.task),
    output:
        run=f"{RESULTS}/{{task}}/{{variant}}/seed{{seed}}/model/run.json",
        trace=f"{RESULTS}/{{task}}/{{variant}}/seed{{seed}}/trace.tsv",
        summary=f"{RESULTS}/{{task}}/{{variant}}/seed{{seed}}/summary.json",
    log:
        f"logs/train/{{task}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"benchmarks/train/{{task}}_{{variant}}_seed{{seed}}.tsv"
    wildcard_constraints:
        variant=r"full|r[0-9.]+(-[A-Za-z0-9_.\-]+)?",
        seed=r"\d+",
    threads: 2
    resources:
        gpu=lambda wc: res("train", "gpu"),
        runtime=lambda wc: res("train", "runtime"),
        mem_mb=lambda wc: res("train", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        out=lambda wc: f"{RESULTS}/{wc.task}/{wc.variant}/seed{wc.seed}",
        flag=lambda wc: "--full" if wc.variant == "full" else f"--ratio {budget_of(wc.variant)}",
        sets=train_sets,
    shell:
        f"{OFFLINE_JOB} " "{params.ar} train --task {wildcards.task} {params.flag} --seed {wildcards.seed} --out {params.out} --quiet "
        "--set {params.sets} > {log} 2>&1"
