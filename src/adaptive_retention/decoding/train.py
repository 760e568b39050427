"""Training the learned cache's gates (issue 19), the LM frozen.

Per step, one window of real text: the full model's next-token distribution on the window's last `kl_tokens`
positions (the teacher, no gradients), the same model with its attention gated (`learned.GatedAttention`), and

    loss = KL(teacher ‖ gated) + capacity term,

the capacity term being the Lagrangian of `budget.DualController` on each layer's expected kept fraction (each
layer and KV head's with `gate_scope: kv_head`, whose every head keeps M entries at inference; the dual ascent after
the step; `capacity_weight` > 0 instead: a fixed weight on the kept fraction, TRIM-KV-style). The target
kept fraction of the gated tokens is what the inference budget leaves them: (M − sinks − window) / (T − sinks − window),
M = int(T (1 − compression)). `kl_focus: long_range` weights each scored position by KL(full ‖ the model seeing only
sinks and window) there — the positions where the far context matters, which a cache exists for. `init_gates`
starts from trained gates (then `warmup_steps: 0`: they already meet a budget). `rank_weight` > 0 adds a ranking
loss on the first `rank_layers` layers' scorers toward a press's choice there (`rank_score`, TOVA's by default;
`rank_divergence`): where the layer-swap diagnostic found passkey lost (measurements/decoding-learned/README.md,
session 16). `copy_spans`: that share of the
steps' windows repeat one of their spans in the scored tail (`corpus.with_copy`, recall pressure). Every `eval_every` steps the held-out windows' KL under deterministic gates
is logged, and their recall KL: the KL on the predictable tokens of a copied span (the same copy per held-out window
whatever the run's settings, so runs compare).
The run checkpoints (gates, optimiser, controller, RNG, trace) atomically every `checkpoint_every` steps — the trace
file too, to follow a long run — and resumes from its checkpoint; a NaN loss stops it with the step named, the last checkpoint intact.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..budget import DualController
from ..io import atomic_path, write_atomic
from .cache import RetentionCache
from .corpus import with_copy
from .learned import CacheGates, GatedAttention
from .scores import NEEDS_QUERIES, SCORES
from .train_config import TrainConfig


def kl_per_position(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """KL(softmax teacher ‖ softmax student) at each position; logits (B, K, V) → (B, K)."""
    return F.kl_div(student.float().log_softmax(-1), teacher.float().log_softmax(-1), log_target=True,
                    reduction="none").sum(-1)


def kl(teacher: torch.Tensor, student: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over positions of the KL, or its `weight`ed mean (weight (B, K))."""
    per_position = kl_per_position(teacher, student)
    return per_position.mean() if weight is None else (per_position * weight).sum() / weight.sum().clamp(min=1e-12)


class ClosedGates:
    """Gates that close every gated key: the model sees only the sinks and the recent window (the local teacher)."""

    def __init__(self, layers: int):
        self.config = {"layers": layers}

    def __call__(self, layer: int, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states.new_full((hidden_states.shape[0], 1, hidden_states.shape[1]), -1e4, dtype=torch.float32)


def rank_divergence(teacher: RetentionCache, log_alphas: list[torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """The ranking loss: over the first `rank_layers` layers, the mean KL(`rank_score`'s score — TOVA's: the attention
    from the window's last query — normalised over the gated entries ‖ softmax of their log α): the choice that press
    makes there, taught to a score fixed at creation (ToP's ranking distillation, Li et al. 2023). Shift-free in
    log α, so the budget is untouched. Ranked: the entries after the sinks, before the recent window and before the
    score's own queries."""
    terms = []
    ranked = teacher.layers[:cfg.ranked_layers(len(teacher.layers))]
    for layer, log_alpha in zip(ranked, log_alphas):                                           # log α (B, H, T)
        target = SCORES[cfg.rank_score](keys=layer.keys, positions=layer.positions, queries=layer.queries,
                                        query_positions=layer.query_positions,
                                        attention=layer.attention)                             # (B, Hkv, T)
        if log_alpha.shape[1] == 1:
            target = target.mean(dim=1, keepdim=True)
        gated = slice(cfg.sinks, target.shape[-1] - max(cfg.window, NEEDS_QUERIES.get(cfg.rank_score, 0)))
        t = target[..., gated].float()
        t = t / t.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        log_q = log_alpha[..., gated].float().log_softmax(dim=-1)
        terms.append((t * (t.clamp(min=1e-12).log() - log_q)).sum(dim=-1).mean())
    return torch.stack(terms).mean()


def _teacher(model, ids: torch.Tensor, cfg: TrainConfig, scored: slice = slice(None), cache=None) -> torch.Tensor:
    """The full model's logits on the scored positions (B, scored, V): what every gate set is compared with."""
    with torch.no_grad():
        return model(ids, cache=cache, logits_to_keep=cfg.kl_tokens).logits[:, scored]


def _loss(model, gates, ids: torch.Tensor, cfg: TrainConfig, sample: bool, scored: slice = slice(None),
          focus: str = "all", rank: bool = False, teacher: torch.Tensor | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(KL, expected kept per layer, ranking loss or None) on one batch of windows (B, T); `scored` picks among the
    last kl_tokens positions; focus "long_range" weights each position by KL(full ‖ local), where the far context
    matters (LongPPL's key tokens, Fang et al. 2024); rank: the teacher's pass records what `rank_score`
    reads (`rank_divergence`); `teacher`: `_teacher`'s logits for these ids and `scored`, when already computed."""
    with torch.no_grad():
        cache = RetentionCache.full(model, observe=(cfg.rank_score,)) if rank else None
        if rank or teacher is None:  # the ranking loss reads what the teacher's own pass records in `cache`
            teacher = _teacher(model, ids, cfg, scored, cache)
        weight = None
        if focus == "long_range":
            with GatedAttention(model, ClosedGates(gates.config["layers"]), cfg.sinks, cfg.window, sample=False):
                weight = kl_per_position(teacher, model(ids, logits_to_keep=cfg.kl_tokens).logits[:, scored])
    with GatedAttention(model, gates, cfg.sinks, cfg.window, gate=cfg.gate, sample=sample) as gated:
        student = model(ids, logits_to_keep=cfg.kl_tokens).logits[:, scored]
    ranking = rank_divergence(cache, gated.log_alphas, cfg) if rank else None
    return kl(teacher, student, weight), gated.expected_kept, ranking


def _copied(window: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> tuple[torch.Tensor, slice]:
    """(the window with a copied span, the scored positions that predict the span's 2nd…last token)."""
    ids, dst = with_copy(window, cfg.kl_tokens, cfg.copy_length, cfg.sinks, generator)
    first = dst - (window.shape[-1] - cfg.kl_tokens)
    return ids, slice(first, first + cfg.copy_length - 1)


@torch.no_grad()
def held_out_rows(model, gate_sets: list, windows: list[torch.Tensor], cfg: TrainConfig, quiet: bool = True
                  ) -> list[list[dict]]:
    """Per gate set, per held-out window {kl, kept, recall_kl} under deterministic gates: the KL on its scored tail,
    the mean expected kept fraction, and the recall KL on a span copied into it — window i's copy drawn from seed i
    alone, so every gate set meets the same copies (`decode-heldout` compares gate sets window by window). The full
    model reads each window and its copy once for every gate set."""
    rows = [[] for _ in gate_sets]
    for i, w in enumerate(tqdm(windows, desc="held-out windows", disable=quiet)):
        copied, span = _copied(w, cfg, torch.Generator().manual_seed(i))
        plain, copied = w[None].to(model.device), copied[None].to(model.device)
        full, full_on_copy = _teacher(model, plain, cfg), _teacher(model, copied, cfg, span)
        for out, gates in zip(rows, gate_sets):
            divergence, kept, _ = _loss(model, gates, plain, cfg, sample=False, teacher=full)
            recall, _, _ = _loss(model, gates, copied, cfg, sample=False, scored=span, teacher=full_on_copy)
            out.append(dict(kl=float(divergence), kept=float(kept.mean()), recall_kl=float(recall)))
    return rows


def held_out_kl(model, gates, windows: list[torch.Tensor], cfg: TrainConfig) -> tuple[float, float, float]:
    """(mean KL, mean kept, mean recall KL) over held-out windows (`held_out_rows`): the training trace's curve."""
    rows, = held_out_rows(model, [gates], windows, cfg)
    return tuple(sum(r[k] for r in rows) / len(rows) for k in ("kl", "kept", "recall_kl"))


def train_gates(model, train: list[torch.Tensor], held_out: list[torch.Tensor], cfg: TrainConfig,
                out: str | os.PathLike, quiet: bool = False) -> CacheGates:
    """Train the gates on `train` windows (each (T,)), resuming from OUT.ckpt; the gates to OUT, the trace (one
    JSON line per step) to OUT.trace.jsonl."""
    if not train:
        raise ValueError("no training windows")
    out = Path(out)
    checkpoint, trace_path = out.with_name(out.name + ".ckpt"), out.with_name(out.name + ".trace.jsonl")
    length = train[0].shape[-1]
    if cfg.sinks + cfg.copy_length > length - cfg.kl_tokens:
        raise ValueError(f"windows of {length} tokens leave no room for a {cfg.copy_length}-token copy (copy_length) "
                         f"between the {cfg.sinks} sinks and the last {cfg.kl_tokens} (kl_tokens)")
    for p in model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(cfg.seed)
    gates = CacheGates.for_model(model, cfg.init_keep, per_kv_head=cfg.gate_scope == "kv_head").to(model.device)
    if cfg.init_gates:  # a warm start (a resumed run reloads its own gates below)
        start_from = CacheGates.load(cfg.init_gates)
        if any(start_from.config[k] != gates.config[k] for k in ("layers", "hidden", "heads")):
            raise ValueError(f"init_gates {cfg.init_gates} holds gates for {start_from.config}, not this model's "
                             f"{gates.config} (gate_scope {cfg.gate_scope})")
        gates.load_state_dict(start_from.state_dict())
    if cfg.rank_weight > 0:
        cfg.ranked_layers(gates.config["layers"])  # refuses more layers than the model has, before any step
    constraints = gates.config["layers"] * gates.config["heads"]  # a kept fraction per layer (and KV head)
    optimiser = torch.optim.AdamW(gates.parameters(), lr=cfg.lr, weight_decay=0.0)
    controller = DualController([cfg.target(length)] * constraints, eta=cfg.eta, warmup_steps=cfg.warmup_steps,
                                mode=cfg.dual_mode, quadratic=cfg.quadratic, projection=cfg.projection)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    trace, start = [], 0  # start: the step the checkpoint holds
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        saved = {**{f.name: f.default for f in fields(TrainConfig)}, **state["config"]}  # fields added since: defaults
        if saved != asdict(cfg):
            raise ValueError(f"{checkpoint} was made with another configuration; remove it to start over\n"
                             f"  saved: {saved}\n  now:   {asdict(cfg)}")
        gates.load_state_dict(state["gates"])
        optimiser.load_state_dict(state["optimiser"])
        controller.load_state_dict(state["controller"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():  # the gates' noise on a GPU
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        trace, start = state["trace"], state["step"]
    held = held_out[:cfg.held_out]
    for step in tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=out.stem, disable=quiet):
        ids = train[order[step % len(order)]]
        draw = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # this step's copy: the same on resume
        if float(torch.rand(1, generator=draw)) < cfg.copy_spans:
            ids, _ = _copied(ids, cfg, draw)
        ids = ids[None].to(model.device)
        divergence, kept, ranking = _loss(model, gates, ids, cfg, sample=cfg.gate == "hard_concrete", focus=cfg.kl_focus,
                                          rank=cfg.rank_weight > 0)
        if cfg.capacity_weight > 0:
            capacity = cfg.capacity_weight * kept.sum()
        else:
            capacity = controller.penalty(kept)
        loss = divergence + capacity + (cfg.rank_weight * ranking if ranking is not None else 0)
        kept_now = kept.detach()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss.detach())} at step {step} (KL {float(divergence.detach())}); "
                                     f"the checkpoint {checkpoint} is intact")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        lambdas = controller.update(kept_now) if cfg.capacity_weight == 0 else controller.lambdas
        row = dict(step=step, kl=round(float(divergence.detach()), 6), kept=round(float(kept_now.mean()), 5),
                   kept_min=round(float(kept_now.min()), 5), kept_max=round(float(kept_now.max()), 5),
                   target=round(float(controller.current_targets().mean()), 5), lam=round(float(lambdas.mean()), 6))
        if ranking is not None:
            row["rank_kl"] = round(float(ranking.detach()), 6)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            row["held_out_kl"], row["held_out_kept"], row["held_out_recall_kl"] = (
                round(v, 6) for v in held_out_kl(model, gates, held, cfg))
        trace.append(row)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            with atomic_path(checkpoint) as tmp:
                torch.save(dict(config=asdict(cfg), step=step + 1, gates=gates.state_dict(),
                                optimiser=optimiser.state_dict(), controller=controller.state_dict(),
                                rng=torch.get_rng_state(), trace=trace,
                                cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None), tmp)
            write_atomic(trace_path, "".join(json.dumps(r) + "\n" for r in trace))  # readable while it trains
    write_atomic(trace_path, "".join(json.dumps(r) + "\n" for r in trace))
    gates.eval().save(out)
    return gates
