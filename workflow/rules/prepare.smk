# Data preparation, the first stage (→ training → evaluation → analysis): each task's splits and each hub
# model are fetched once, where the network is, into config `prepared_dir`; training and evaluation jobs
# then read only from there, with the hub switched off inside them (HF_HUB_OFFLINE=1). On Slurm these are
# local rules: they run on the submitting host, since compute nodes often have no network.


localrules:
    prepare_data,
    prepare_model,


rule prepare_data:
    """Snapshot one task's train and eval records (Arrow folders) with manifest.json: origin, rows, labels,
    repo, config, requested and resolved revision. The default run snapshots the local mirrors the same way."""
    output:
        data_manifest("{task}"),
    log:
        "logs/prepare/data_{task}.log",
    priority: PRIORITY["full"]  # a full model's training waits on it (CUAD's snapshot waited 91 s behind study runs)
    benchmark:
        "benchmarks/prepare/data_{task}.tsv"
    wildcard_constraints:
        task="|".join(re.escape(t) for t in config["tasks"]),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        folder=lambda wc: f"{DATA}/{wc.task}",
        source=config["source"],
        data_dir=config["data_dir"],
    shell:
        "{params.ar} prepare-data --task {wildcards.task} --source {params.source} --data-dir {params.data_dir:q} "
        "--out {params.folder:q} > {log:q} 2>&1"


rule prepare_model:
    """Snapshot one hub model (config, tokenizer, weights) with its resolved revision."""
    output:
        f"{PREPARED}/models/{{slug}}/prepared.json",
    log:
        "logs/prepare/model_{slug}.log",
    benchmark:
        "benchmarks/prepare/model_{slug}.tsv"
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        folder=lambda wc: f"{PREPARED}/models/{wc.slug}",
        model=lambda wc: HUB_MODELS[wc.slug],
    shell:
        "{params.ar} prepare-model --model {params.model:q} --out {params.folder:q} > {log:q} 2>&1"
