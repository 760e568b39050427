# Retention for decoders (issue 18): the KV-cache bench on a causal LM — one job per probe × context length (every
# eviction score and compression on the same prefilled caches; a killed job resumes from its progress file), the cost
# of decoding against context length, streaming perplexity, then the table and the figure.


rule prepare_decoder:
    """SmolLM2's GGUF file dequantised once into a plain folder (≈ 30 s per load otherwise, < 1 s from the folder)."""
    output:
        directory("resources/smollm2"),
    log:
        "logs/decoding/prepare_decoder.log",
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
    shell:
        "{params.ar} prepare-decoder --model smollm2 --out {output:q} > {log:q} 2>&1"


rule decode_cell:
    """One probe at one context length: the full cache and every score at every compression, same samples."""
    input:
        DECODER_INPUT,
    output:
        f"{RESULTS}/decoding/{{probe}}-{{length}}.tsv",
    log:
        "logs/decoding/{probe}-{length}.log",
    benchmark:
        "benchmarks/decoding/{probe}-{length}.tsv"
    wildcard_constraints:
        probe="|".join(DECODING_PROBES),
        length=r"\d+",
    threads: res("decoding", "threads")
    resources:
        gpu=lambda wc: res("decoding", "gpu"),
        runtime=lambda wc: res("decoding", "runtime"),
        mem_mb=lambda wc: res("decoding", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: DECODER,
        d=DECODING,
        squad=DECODING_SQUAD,
        methods=" ".join(DECODING["methods"]),
        compressions=" ".join(f"{c:g}" for c in DECODING["compressions"]),
        per_head="--per-head" if DECODING["per_head"] else "",
    shell:
        f"{TORCH_THREADS} " "{params.ar} decode-bench --model {params.model:q} --probe {wildcards.probe} --length {wildcards.length} "
        "--samples {params.d[samples]} --seed {params.d[seed]} --methods {params.methods} --compressions {params.compressions} "
        "--sinks {params.d[sinks]} --window {params.d[window]} {params.per_head} --squad-file {params.squad:q} --quiet "
        "--out {output:q} > {log:q} 2>&1"


rule decode_cost:
    """Cache memory and time per generated token against context length: the full cache beside every score at every
    compression, variants alternating in one process."""
    input:
        DECODER_INPUT,
    output:
        f"{RESULTS}/decoding/cost.tsv",
    log:
        "logs/decoding/cost.log",
    benchmark:
        "benchmarks/decoding/cost.tsv"
    threads: res("decoding", "threads")
    resources:
        gpu=lambda wc: res("decoding", "gpu"),
        runtime=lambda wc: res("decoding", "runtime"),
        mem_mb=lambda wc: res("decoding", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: DECODER,
        d=DECODING,
        cost=DECODING["cost"],
        lengths=" ".join(str(n) for n in DECODING["cost"]["lengths"]),
        methods=" ".join(DECODING["methods"]),
        compressions=" ".join(f"{c:g}" for c in DECODING["compressions"]),
    shell:
        f"{TORCH_THREADS} " "{params.ar} decode-cost --model {params.model:q} --lengths {params.lengths} --methods {params.methods} "
        "--compressions {params.compressions} --sinks {params.d[sinks]} --window {params.d[window]} --tokens {params.cost[tokens]} "
        "--repeats {params.cost[repeats]} --seed {params.d[seed]} --quiet --out {output:q} > {log:q} 2>&1"


# How decode_perplexity and decode_learned_perplexity read their documents: one string, so the learned cache's file
# repeats the bench's full-cache rows exactly (analysis.decoding.load_perplexity refuses rows that differ). Both rules'
# params: ar, model, d, ppl, sources, data_dir.
PERPLEXITY_READ = (
    f"{TORCH_THREADS} " "{params.ar} decode-perplexity --model {params.model:q} --sources {params.sources} --data-dir {params.data_dir:q} "
    "--length {params.ppl[length]} --documents {params.ppl[documents]} --chunk {params.ppl[chunk]} --sinks {params.d[sinks]} "
    "--window {params.d[window]} --seed {params.d[seed]} --quiet "
)


rule decode_perplexity:
    """Streaming perplexity of long real documents (arXiv papers, CUAD contracts) read through the budgeted cache,
    the full cache scored on the same tokens."""
    input:
        DECODER_INPUT,
    output:
        f"{RESULTS}/decoding/perplexity.tsv",
    log:
        "logs/decoding/perplexity.log",
    benchmark:
        "benchmarks/decoding/perplexity.tsv"
    threads: res("decoding", "threads")
    resources:
        gpu=lambda wc: res("decoding", "gpu"),
        runtime=lambda wc: res("decoding", "runtime"),
        mem_mb=lambda wc: res("decoding", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: DECODER,
        d=DECODING,
        ppl=DECODING["perplexity"],
        sources=" ".join(DECODING["perplexity"]["sources"]),
        data_dir=config["data_dir"],
        methods=" ".join(DECODING["methods"]),
        compressions=" ".join(f"{c:g}" for c in DECODING["compressions"]),
    shell:
        f"{PERPLEXITY_READ}" "--methods {params.methods} --compressions {params.compressions} --out {output:q} > {log:q} 2>&1"


# decode_train and decode_refine read the same windows (training text, never a document streaming perplexity scores)
DECODE_TRAIN = (
    f"{TORCH_THREADS} " "{params.ar} decode-train --model {params.model:q} --data-dir {params.data_dir:q} "
    "--length {params.learned[length]} --per-source {params.learned[per_source]} --exclude-length {params.ppl[length]} "
    "--exclude-documents {params.ppl[documents]} --compression {wildcards.compression} --seed {wildcards.gseed} "
    "--sinks {params.d[sinks]} --window {params.d[window]} "
)


rule decode_train:
    """The learned cache's gates at one compression and training seed (issue 19): the LM frozen, KL to the full cache
    on windows of arXiv, CUAD and IMDb text (never a document streaming perplexity scores) under the Lagrangian
    budget; resumes from its checkpoint (OUT.ckpt) when killed."""
    input:
        DECODER_INPUT,
    output:
        gates=f"{RESULTS}/decoding/gates/c{{compression}}-s{{gseed}}.pt",
        trace=f"{RESULTS}/decoding/gates/c{{compression}}-s{{gseed}}.pt.trace.jsonl",
    log:
        "logs/decoding/train-c{compression}-s{gseed}.log",
    benchmark:
        "benchmarks/decoding/train-c{compression}-s{gseed}.tsv"
    wildcard_constraints:
        compression=r"0\.\d+",
        gseed=r"\d+",
    threads: res("decoding", "threads")
    resources:
        gpu=lambda wc: res("decoding", "gpu"),
        runtime=lambda wc: res("decoding", "runtime"),
        mem_mb=lambda wc: res("decoding", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: DECODER,
        d=DECODING,
        learned=DECODING["learned"],
        ppl=DECODING["perplexity"],
        data_dir=config["data_dir"],
        train=train_options(DECODING["learned"]["train"]),
    shell:
        f"{DECODE_TRAIN}" "{params.train} --quiet --out {output.gates:q} > {log:q} 2>&1"


rule decode_refine:
    """The learned cache's second stage (decoding.learned.refine): the first stage's gates trained on with the refine
    keys on top of the train keys, same windows and seed; resumes from its checkpoint like decode_train."""
    input:
        DECODER_INPUT,
        init=rules.decode_train.output.gates,
    output:
        gates=f"{RESULTS}/decoding/gates/c{{compression}}-s{{gseed}}-refined.pt",
        trace=f"{RESULTS}/decoding/gates/c{{compression}}-s{{gseed}}-refined.pt.trace.jsonl",
    log:
        "logs/decoding/refine-c{compression}-s{gseed}.log",
    benchmark:
        "benchmarks/decoding/refine-c{compression}-s{gseed}.tsv"
    wildcard_constraints:
        compression=r"0\.\d+",
        gseed=r"\d+",
    threads: res("decoding", "threads")
    resources:
        gpu=lambda wc: res("decoding", "gpu"),
        runtime=lambda wc: res("decoding", "runtime"),
        mem_mb=lambda wc: res("decoding", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: DECODER,
        d=DECODING,
        learned=DECODING["learned"],
        ppl=DECODING["perplexity"],
        data_dir=config["data_dir"],
        train=train_options({**DECODING["learned"]["train"], **DECODING["learned"]["refine"]}),
    shell:
        f"{DECODE_TRAIN}" "{params.train} --init-gates {input.init:q} --quiet --out {output.gates:q} > {log:q} 2>&1"


rule decode_learned_cell:
    """One probe at one context length under the learned cache of one compression and training seed: the same samples
    as the presses' cell (same probe seed), its full-cache row left there."""
    input:
        DECODER_INPUT,
        gates=learned_gates,
    output:
        f"{RESULTS}/decoding/learned/{{probe}}-{{length}}-c{{compression}}-s{{gseed}}.tsv",
    log:
        "logs/decoding/learned-{probe}-{length}-c{compression}-s{gseed}.log",
    benchmark:
        "benchmarks/decoding/learned-{probe}-{length}-c{compression}-s{gseed}.tsv"
    wildcard_constraints:
        probe="|".join(DECODING_PROBES),
        length=r"\d+",
        compression=r"0\.\d+",
        gseed=r"\d+",
    threads: res("decoding", "threads")
    resources:
        gpu=lambda wc: res("decoding", "gpu"),
        runtime=lambda wc: res("decoding", "runtime"),
        mem_mb=lambda wc: res("decoding", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: DECODER,
        d=DECODING,
        squad=DECODING_SQUAD,
        per_head="--per-head" if DECODING["per_head"] else "",
    shell:
        f"{TORCH_THREADS} " "{params.ar} decode-bench --model {params.model:q} --probe {wildcards.probe} --length {wildcards.length} "
        "--samples {params.d[samples]} --seed {params.d[seed]} --methods learned --gates {input.gates:q} --no-full "
        "--compressions {wildcards.compression} --sinks {params.d[sinks]} --window {params.d[window]} {params.per_head} "
        "--squad-file {params.squad:q} --quiet --out {output:q} > {log:q} 2>&1"


rule decode_learned_perplexity:
    """Streaming perplexity under the learned cache of one compression and training seed: the documents and reading of
    decode_perplexity (the gates never trained on them), its full-cache rows repeated there (analysis keeps them once)."""
    input:
        DECODER_INPUT,
        gates=learned_gates,
    output:
        f"{RESULTS}/decoding/learned/perplexity-c{{compression}}-s{{gseed}}.tsv",
    log:
        "logs/decoding/learned-perplexity-c{compression}-s{gseed}.log",
    benchmark:
        "benchmarks/decoding/learned-perplexity-c{compression}-s{gseed}.tsv"
    wildcard_constraints:
        compression=r"0\.\d+",
        gseed=r"\d+",
    threads: res("decoding", "threads")
    resources:
        gpu=lambda wc: res("decoding", "gpu"),
        runtime=lambda wc: res("decoding", "runtime"),
        mem_mb=lambda wc: res("decoding", "mem_mb"),
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        ar=AR,
        model=lambda wc: DECODER,
        d=DECODING,
        ppl=DECODING["perplexity"],
        sources=" ".join(DECODING["perplexity"]["sources"]),
        data_dir=config["data_dir"],
    shell:
        f"{PERPLEXITY_READ}" "--methods learned --gates {input.gates:q} --compressions {wildcards.compression} --out {output:q} > {log:q} 2>&1"


rule decoding_report:
    """Accuracy per probe, length, method and compression with exact intervals and paired McNemar tests; the figure;
    the cost figure (cache memory and decode time per token against context length)."""
    input:
        cells=decoding_cells(),
        learned=learned_cells(),
        cost=rules.decode_cost.output,
        perplexity=rules.decode_perplexity.output,
        learned_perplexity=learned_perplexity(),
    output:
        table=report(f"{RESULTS}/tables/decoding.csv", caption="../report/decoding.rst", category="Decoders"),
        learned_table=f"{RESULTS}/tables/decoding-learned.csv",
        markdown=f"{RESULTS}/tables/decoding.md",
        figure=report(f"{RESULTS}/figures/decoding.png", caption="../report/decoding.rst", category="Decoders"),
        cost_figure=report(f"{RESULTS}/figures/decoding-cost.png", caption="../report/decoding-cost.rst", category="Decoders"),
    log:
        "logs/decoding/report.log",
    conda:
        "../../envs/adaptive-retention.yaml"
    params:
        analysis=ANALYSIS,
        learned=lambda wc, input: ("--learned " + " ".join(f"'{p}'" for p in input.learned)) if input.learned else "",
    shell:
        "{params.analysis}.decoding {input.cells:q} --cost {input.cost:q} --perplexity {input.perplexity:q} {input.learned_perplexity:q} --table {output.table:q} "
        "--markdown {output.markdown:q} --figure {output.figure:q} --cost-figure {output.cost_figure:q} "
        "--learned-table {output.learned_table:q} {params.learned} > {log:q} 2>&1"
