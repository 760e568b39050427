"""Where the answer's first token looks: per layer, the attention that the last prompt token (the one whose logits give
the answer's first token) puts on the context's answer tokens, under the full cache, a press and the learned cache at
one compression, on the same samples. Why a learned cache fails a probe: are the answer's tokens gone, or kept and not
looked at? A diagnostic: it reads gates, it never trains; use the calibration probe seed (7), not the evaluation one.

    .venv/bin/python scripts/answer_attention.py GATES [--probe passkey] [--samples 5] [--compression 0.5]
        [--press tova] [--model smollm2] > attention.tsv
Columns: sample, method, layer, answer_kept (answer tokens in that layer's cache, mean over KV heads), mass_mean (attention on them,
mean over heads), mass_max (the most attentive head's), first_token (the greedy first answer token).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from learned_ranks import answer_positions, probe_arguments  # noqa: E402  (a sibling script)

from adaptive_retention.decoding.bench import FULL, prefilled  # noqa: E402
from adaptive_retention.decoding.cache import RetentionCache, RetentionPolicy, attention_modules  # noqa: E402
from adaptive_retention.decoding.defaults import LEARNED, SINKS, WINDOW, budget_for  # noqa: E402
from adaptive_retention.decoding.learned import CacheGates  # noqa: E402
from adaptive_retention.decoding.models import load_causal_lm  # noqa: E402
from adaptive_retention.decoding.probes import make_probe, prompt_parts  # noqa: E402


@torch.no_grad()
def answer_attention(model, cache: RetentionCache, question: torch.Tensor, answer: set[int]) -> tuple[list[dict], int]:
    """Per layer {answer_kept (mean over KV heads), mass_mean, mass_max} for the question's last token over `cache`;
    and its argmax token. Each query head reads its own KV head's kept positions (per-head presses and gates)."""
    columns = {}  # layer → (Hkv, kept + q) true positions of the key columns: the kept entries, then the question's
    def before(module, args, kwargs):
        layer = cache.layers[module.layer_idx]
        fresh = torch.arange(layer.seen, layer.seen + question.shape[1]).expand(layer.positions.shape[1], -1)
        columns[module.layer_idx] = torch.cat([layer.positions[0].cpu(), fresh], dim=-1)
    handles = [m.register_forward_pre_hook(before, with_kwargs=True) for m in attention_modules(model)]
    try:
        out = model(question, cache=cache, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    rows = []
    for layer, weights in enumerate(out.attentions):          # (1, Hq, q, kept + q)
        on_answer = torch.isin(columns[layer], torch.tensor(sorted(answer)))  # (Hkv, kept + q)
        group = weights.shape[1] // on_answer.shape[0]           # query heads per KV head (SDPA's GQA order)
        mass = (weights[0, :, -1].cpu() * on_answer.repeat_interleave(group, dim=0)).sum(-1)  # (Hq,)
        rows.append(dict(layer=layer, answer_kept=on_answer.sum(-1).float().mean().item(), mass_mean=mass.mean().item(),
                         mass_max=mass.max().item()))
    return rows, int(out.logits[0, -1].argmax())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("gates")
    probe_arguments(p, samples=5)
    p.add_argument("--press", default="tova")
    args = p.parse_args(argv)
    model, tokenizer = load_causal_lm(args.model)
    model.set_attn_implementation("eager")  # attention weights out; the same attention otherwise
    gates = CacheGates.load(args.gates).to(model.device)
    print("sample\tmethod\tlayer\tanswer_kept\tmass_mean\tmass_max\tfirst_token")
    for sample in make_probe(args.probe, tokenizer, args.length, args.samples, args.seed):
        context_text, question_text = prompt_parts(sample, tokenizer)
        context, positions = answer_positions(tokenizer, context_text, sample.answers, add_special_tokens=True)  # as the bench
        context, answer = context.to(model.device), set(positions)
        question = tokenizer(question_text, add_special_tokens=False, return_tensors="pt").input_ids.to(model.device)
        full = prefilled(model, context, (args.press, LEARNED), gates)
        budget = budget_for(context.shape[1], args.compression, SINKS + WINDOW)
        for method, policy in ((FULL, full.policy), (args.press, RetentionPolicy(budget, args.press)),
                               (LEARNED, RetentionPolicy(budget, LEARNED))):
            rows, first = answer_attention(model, full.compressed(policy), question, answer)
            for r in rows:
                print(f"{sample.id}\t{method}\t{r['layer']}\t{r['answer_kept']:g}\t{r['mass_mean']:.4f}\t{r['mass_max']:.4f}\t"
                      f"{tokenizer.decode([first])!r}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
