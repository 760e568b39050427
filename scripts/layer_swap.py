"""Which layers' choices make a learned cache fail or succeed on a probe: the learned cache with another score's
choice (TOVA by default) in one group of layers, and that score's cache with the learned choice in one group — same
budget in every layer, so each swap keeps the memory. A diagnostic; it reads gates, it never trains. Use the
calibration probe seed (7), not the evaluation seed (0).

    .venv/bin/python scripts/layer_swap.py GATES [--probe passkey] [--length 1024] [--samples 20] [--seed 7]
        [--compression 0.5] [--other tova] [--group 5] > swap.tsv

One row per variant and sample (its depth, correct 0/1): variant `learned`, `<other>`, `learned+<other>@a-b` (the
other score's choice in layers a..b) and `<other>+learned@a-b` — paired over the samples, for McNemar.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from learned_ranks import probe_arguments  # noqa: E402  (a sibling script)

from adaptive_retention.decoding.bench import greedy, prefilled, prompt_ids, stack, whitespace_tokens  # noqa: E402
from adaptive_retention.decoding.cache import RetentionCache, RetentionPolicy  # noqa: E402
from adaptive_retention.decoding.defaults import LEARNED, SINKS, WINDOW, budget_for  # noqa: E402
from adaptive_retention.decoding.learned import CacheGates  # noqa: E402
from adaptive_retention.decoding.models import load_causal_lm  # noqa: E402
from adaptive_retention.decoding.probes import correct, make_probe  # noqa: E402
from adaptive_retention.decoding.scores import check_score  # noqa: E402


def swapped(base: RetentionCache, other: RetentionCache, layers: range) -> RetentionCache:
    """A copy of `base` holding `other`'s layers in `layers` (both cut to the same budget: every layer keeps its size).
    The layers are shared, not cloned: `greedy` reads them through `stack`, which writes only its own."""
    swap = copy.copy(base)
    swap.layers = [other.layers[i] if i in layers else layer for i, layer in enumerate(base.layers)]
    return swap


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("gates")
    probe_arguments(p, samples=20)
    p.add_argument("--other", default="tova", help="the training-free score swapped in (default tova)")
    p.add_argument("--group", type=int, default=5, help="layers per swapped group (default 5)")
    args = p.parse_args(argv)
    check_score(args.other)
    gates = CacheGates.load(args.gates)
    model, tokenizer = load_causal_lm(args.model)
    groups = [range(a, min(a + args.group, gates.config["layers"])) for a in range(0, gates.config["layers"], args.group)]
    eos, (newline, blank) = {tokenizer.eos_token_id} - {None}, whitespace_tokens(tokenizer)
    print("gates\tprobe\tvariant\tsample\tdepth\tcorrect")
    for sample in tqdm(make_probe(args.probe, tokenizer, args.length, args.samples, args.seed), desc="samples"):
        context, question = prompt_ids(sample, tokenizer, model.device)
        full = prefilled(model, context, (LEARNED, args.other), gates)
        budget = budget_for(context.shape[1], args.compression, SINKS + WINDOW)
        learned, other = (full.compressed(RetentionPolicy(budget, score, SINKS, WINDOW)) for score in (LEARNED, args.other))
        variants = {LEARNED: learned, args.other: other}
        for g in groups:
            tag = f"{g.start}-{g.stop - 1}"
            variants[f"{LEARNED}+{args.other}@{tag}"] = swapped(learned, other, g)
            variants[f"{args.other}+{LEARNED}@{tag}"] = swapped(other, learned, g)
        for name, cache in variants.items():
            answer = greedy(model, stack([cache], model), question, sample.max_new_tokens, eos, newline, blank)[0]
            hit = int(correct(sample, tokenizer.decode(answer, skip_special_tokens=True)))
            print(f"{args.gates}\t{args.probe}\t{name}\t{sample.id}\t{sample.depth:.3g}\t{hit}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
