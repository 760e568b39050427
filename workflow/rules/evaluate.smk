rule evaluate:
    """One checkpoint under its plan of selection methods and ratios (common.smk: eval_plan): a bundle
    JSON of every result, and one JSON per (method, ratio) in eval/ beside it."""
    input:
        run=f"{RESULTS}/{{task}}/{{variant}}/seed{{seed}}/model/run.json",
        prepared=lambda wc: data_manifest(wc.task),
    output:
        bundle=f"{RESULTS}/{{task}}/{{variant}}/seed{{seed}}/eval.json",
        examples=f"{RESULTS}/{{task}}/{{variant}}/seed{{seed}}/kept_examples.json",
    log:
        f"logs/evaluate/{{task}}_{{variant}}_seed{{seed}}.log",
    benchmark:
        f"benchmarks/evaluate/{{task}}_{{variant}}_seed{{seed}}.tsv"
    wildcard_constraints:
        variant=r"full|r[0-9.]+(-[A-Za-z0-9_.\-]+)?",
        seed=r"\d+",
    threads: 2
    resources:
        gpu=lambda wc: res("evaluate", "gpu"),
        runtime=lambda wc: res("evaluate", "runtime"),
        mem_mb=lambda wc: res("evaluate", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        checkpoint=lambda wc, input: str(Path(input.run).parent),
        per_ratio=lambda wc: f"{RESULTS}/{wc.task}/{wc.variant}/seed{wc.seed}/eval",
        plan=eval_plan_json,
        size=lambda wc: f"--size {config['tasks'][wc.task]['eval_size']}" if config["tasks"][wc.task].get("eval_size") else "",
        tau=config.get("threshold_tau") or 0.5,
        data_dir=f"{PREPARED}/data",
        retention=lambda wc: " ".join(f"'retention.{k}={json.dumps(v)}'" for k, v in config["retention"].items()),
    shell:
        f"{OFFLINE_JOB} " "{params.ar} evaluate --checkpoint {params.checkpoint} --out {params.per_ratio} --bundle {output.bundle} "
        "--examples-out {output.examples} "
        "--plan {params.plan} {params.size} --tau {params.tau} --quiet "
        "--source prepared --data-dir {params.data_dir} --set {params.retention} > {log} 2>&1"
