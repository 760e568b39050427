"""The retention forward pass: walk the encoder's blocks, score, gate (train) or gather top-M (eval),
restore full length for the head. One call: `apply_retention(model, RetentionConfig(...))`.

We own the block loop and call only the stable leaf modules of each Hugging Face family
(embeddings, one encoder layer, pooler); the per-family binding is the small `FAMILIES` table.

Shapes: B batch, T input length, N current (possibly gathered) length, d hidden size.
"""

from __future__ import annotations

import math
import types
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .budget import layer_ratios
from .config import RetentionConfig
from .gates import LOG_GATE_FLOOR, HardConcrete, make_scorer

_RATIO_SCALE = 10**6  # M = ⌊ρ T⌋ in exact integer arithmetic (ratios with ≤ 6 decimals)


@dataclass
class RetentionInfo:
    """What one forward pass kept. K retention layers; positions index the input (length T)."""

    boundaries: tuple[int, ...]  # block index each retention layer sits before (L = after the last)
    target_ratios: tuple[float, ...]  # ρ_l
    n_tokens: torch.Tensor  # (B,) content tokens T (non-padding, non-special)
    kept_counts: torch.Tensor  # (B, K) content tokens kept after each retention layer
    scores: list[torch.Tensor]  # K × (B, T) scorer output s_t; NaN where the token was already gone
    kept_mask: torch.Tensor  # (B, T) tokens that reached the last block (special tokens included)
    expected_kept: torch.Tensor | None = None  # (K,) training: batch mean of the expected kept fraction

    @property
    def kept_fraction(self) -> torch.Tensor:  # (B, K)
        return self.kept_counts.float() / self.n_tokens.clamp(min=1)[:, None].float()


@dataclass
class RetentionModelOutput(BaseModelOutputWithPooling):
    retention: RetentionInfo | None = None
    global_attentions: tuple | None = None  # read by Longformer's heads; never filled here


# ---------------------------------------------------------------------------------------------
# Family adapters: how to embed, where the blocks are, what the base model returns.


@dataclass(frozen=True)
class Family:
    blocks: Callable[[nn.Module], nn.ModuleList]
    embed: Callable[..., torch.Tensor]  # (base, input_ids, token_type_ids, position_ids, inputs_embeds) -> (B, T, d)
    pool: Callable[[nn.Module, torch.Tensor], torch.Tensor | None]
    query_key: Callable[[nn.Module], tuple[nn.Linear, nn.Linear, int]]  # block -> (W_q, W_k, heads), for heavy hitters
    # (block, h, valid, log_gate, global_) -> h, for blocks that do not take one additive mask; None: BERT-style call
    call_block: Callable | None = None
    window: Callable[[object], int] = lambda config: 1  # sequence lengths must be multiples of this (sliding windows)


def _bert_embed(base, input_ids, token_type_ids, position_ids, inputs_embeds):
    return base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids, inputs_embeds=inputs_embeds)


def _distilbert_embed(base, input_ids, token_type_ids, position_ids, inputs_embeds):
    return base.embeddings(input_ids, inputs_embeds, position_ids)


def _pooler(base, h):
    return base.pooler(h) if getattr(base, "pooler", None) is not None else None


_BERT_LIKE = Family(blocks=lambda base: base.encoder.layer, embed=_bert_embed, pool=_pooler,
                    query_key=lambda blk: (blk.attention.self.query, blk.attention.self.key, blk.attention.self.num_attention_heads))
FAMILIES = {
    "bert": _BERT_LIKE,  # includes MiniLM (all-MiniLM-L6-v2 is a BertModel)
    "roberta": _BERT_LIKE,
    "distilbert": Family(blocks=lambda base: base.transformer.layer, embed=_distilbert_embed, pool=lambda base, h: None,
                         query_key=lambda blk: (blk.attention.q_lin, blk.attention.k_lin, blk.attention.n_heads)),
}


def _longformer_block(block, h, valid, log_gate, global_):
    """One Longformer layer. Its sliding-window kernel takes a key mask, not an additive bias, so in
    training the soft gate reaches attention only as removal: a key whose gate product is ≤ ε is masked
    (exactly what inference does with a dropped token); the gate still scales every hidden state."""
    attend = valid if log_gate is None else valid & (log_gate > math.log(LOG_GATE_FLOOR))
    mask = torch.zeros(valid.shape, dtype=h.dtype, device=h.device)
    mask = mask.masked_fill(~attend, -10000.0).masked_fill(attend & global_, 10000.0)  # HF's −/0/+ convention
    is_global = mask > 0
    return block(h, attention_mask=mask, is_index_masked=mask < 0, is_index_global_attn=is_global,
                 is_global_attn=bool(is_global.any()))[0]


def _longformer_window(config) -> int:
    w = config.attention_window
    return max(w) if isinstance(w, (list, tuple)) else int(w)


FAMILIES["longformer"] = Family(blocks=lambda base: base.encoder.layer, embed=_bert_embed, pool=_pooler,
                                query_key=lambda blk: (blk.attention.self.query, blk.attention.self.key, blk.attention.self.num_heads),
                                call_block=_longformer_block, window=_longformer_window)
ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager")


# ---------------------------------------------------------------------------------------------
# Token selection at inference.


def budget_counts(n_tokens: torch.Tensor, ratio: float) -> torch.Tensor:
    """M = ⌊ρ T⌋ per example, exactly (no float round-off at ρ T integer)."""
    return (n_tokens * round(ratio * _RATIO_SCALE)) // _RATIO_SCALE


def select_top(scores: torch.Tensor, eligible: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: the m[b] eligible tokens of highest score; ties go to the earlier position."""
    key = scores.masked_fill(~eligible, float("-inf"))
    order = torch.sort(key, dim=1, descending=True, stable=True).indices  # (B, N)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return eligible & (rank < m[:, None])


def packed_length(n_keep: int, multiple: int = 1, limit: int | None = None) -> int:
    """Width a batch whose longest row keeps n_keep slots is packed to: the next multiple of `multiple`
    (a sliding-window encoder's window), at most `limit` (the current width, itself such a multiple)."""
    width = -(-n_keep // multiple) * multiple
    return width if limit is None else min(width, limit)


def gather_kept(keep: torch.Tensor, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (B, N') of kept slots in position order, padded by non-kept slots to a width that is a
    multiple of `multiple`, and their validity."""
    n_keep = keep.sum(1)
    width = packed_length(int(n_keep.max()), multiple, keep.shape[1])
    idx = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :width]
    valid = torch.arange(width, device=keep.device)[None, :] < n_keep[:, None]
    return idx, valid


# ---------------------------------------------------------------------------------------------
# The retention module attached to the base model.


class Retention(nn.Module):
    """Scorers, schedule and the retention block loop for one encoder.

    `selecting(...)` evaluates under another choice for the duration of a `with` block: a `selector`
    replaces the learned scores at inference — a callable (hidden (B, N, d), positions (B, N), valid (B, N),
    boundary) -> scores (B, N); baselines plug in here — a `threshold` keeps the tokens with σ(s) > threshold
    instead of the top M_l, and a `ratio` moves the budget.
    """

    def __init__(self, config: RetentionConfig, family: Family, hidden_size: int, num_layers: int, special_token_ids: Iterable[int],
                 window: int = 1):
        super().__init__()
        self.config = config
        self.family = family
        self.ratios = layer_ratios(config.schedule, config.ratio, config.start_layer, num_layers, config.placement)
        self.boundaries = tuple(sorted(self.ratios))
        self.scorers = nn.ModuleDict({str(b): make_scorer(config.scorer, hidden_size, config.scorer_decay, config.init_log_alpha) for b in self.boundaries})
        self.gate = HardConcrete(config.beta, config.gamma, config.zeta)
        self.register_buffer("special_token_ids", torch.tensor(sorted(set(special_token_ids)), dtype=torch.long), persistent=False)
        self.selector: Callable | None = None
        self.threshold: float | None = None
        self.num_layers = num_layers
        self.window = window  # sequence widths are multiples of this (1 unless sliding-window attention)
        self.last_info: RetentionInfo | None = None

    @contextmanager
    def selecting(self, selector: Callable | None = None, threshold: float | None = None, ratio: float | None = None):
        """Inference with a baseline selector, a threshold or another budget; the module is as it was on exit."""
        saved = self.selector, self.threshold, self.config, self.ratios
        self.selector, self.threshold = selector, threshold
        try:
            if ratio is not None:
                self.set_ratio(ratio)
            yield self
        finally:
            self.selector, self.threshold, self.config, self.ratios = saved

    def set_ratio(self, ratio: float) -> None:
        """Evaluate at another budget: same schedule shape and retention layers, new final ratio."""
        config = replace(self.config, ratio=ratio)
        ratios = layer_ratios(config.schedule, ratio, config.start_layer, self.num_layers, config.placement)
        if tuple(sorted(ratios)) != self.boundaries:
            raise ValueError(f"ratio {ratio} moves the retention layers {self.boundaries} -> {tuple(sorted(ratios))}")
        self.config, self.ratios = config, ratios

    def special_mask(self, input_ids, valid: torch.Tensor, special_tokens_mask) -> torch.Tensor:
        """(B, T) tokens always kept and never counted: given mask, else known ids + first and last token."""
        if special_tokens_mask is not None:
            return special_tokens_mask.bool() & valid
        sp = torch.zeros_like(valid)
        if input_ids is not None and self.special_token_ids.numel():
            sp = torch.isin(input_ids, self.special_token_ids)
        count = valid.long().cumsum(1)
        first = valid & (count == 1)
        last = valid & (count == valid.sum(1, keepdim=True))
        return (sp | first | last) & valid

    def _attention_bias(self, valid: torch.Tensor, log_gate: torch.Tensor | None, h: torch.Tensor, impl: str):
        """(B, 1, 1, N) mask for the blocks: None when nothing is masked, bool for SDPA, else additive."""
        if log_gate is None:
            if bool(valid.all()):
                return None
            if impl == "sdpa":
                return valid[:, None, None, :]
        dtype = torch.get_autocast_dtype(h.device.type) if torch.is_autocast_enabled(h.device.type) else h.dtype
        bias = torch.zeros(valid.shape, dtype=torch.float32, device=h.device).masked_fill(~valid, torch.finfo(dtype).min)
        if log_gate is not None:
            bias = bias + log_gate
        return bias.to(dtype)[:, None, None, :]

    def _block(self, block, h, valid, log_gate, global_, impl):
        """One encoder block over the current slots (B, N, d)."""
        if self.family.call_block is not None:
            return self.family.call_block(block, h, valid, log_gate, global_)
        return block(h, attention_mask=self._attention_bias(valid, log_gate, h, impl))

    def _scores(self, b: int, h: torch.Tensor, valid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if self.selector is not None and not self.training:
            return self.selector(h, positions, valid, b)
        scorer = self.scorers[str(b)]
        if self.config.scorer == "recurrent":  # padding must not enter the running summary
            h = h * valid[..., None].to(h.dtype)
        return scorer(h)  # (B, N); the MLP scores each token alone, padding scores are ignored

    def forward(self, base: nn.Module, h: torch.Tensor, valid: torch.Tensor, special: torch.Tensor, impl: str,
                global_: torch.Tensor | None = None) -> tuple[torch.Tensor, RetentionInfo]:
        """`global_` (B, T): tokens with global attention (Longformer); they are part of `special`."""
        global_ = torch.zeros_like(valid) if global_ is None else global_
        if self.training:
            return self._forward_train(base, h, valid, special, impl, global_)
        return self._forward_eval(base, h, valid, special, impl, global_)

    def _forward_train(self, base, h, valid, special, impl, global_):
        """Soft gates at full length: h ← h ⊙ z̃ (and log z̃ on the keys); a soft drop-and-restore.

        `train_gather`: after the last retention layer the tokens whose gate product is exactly 0 leave the sequence
        (gathered as at inference). Such a token adds nothing forward but an ε-weighted key and gets no gradient through
        its gate, so the loss and every gradient change at the ε level while the step's cost falls with the budget.
        Before the last retention layer every token stays: a later layer's expected-kept term scores the dropped ones.
        """
        cfg, (B, T, d) = self.config, h.shape
        eligible = valid & ~special
        n_tokens = eligible.sum(1)
        alive_p = torch.ones(B, T, dtype=torch.float32, device=h.device)  # P(token survived so far)
        alive_g = torch.ones(B, T, dtype=h.dtype, device=h.device)  # product of sampled gates so far
        alive = valid.clone()
        log_gate = torch.zeros(B, T, device=h.device) if cfg.soft_mask == "states+attention" else None
        restored = torch.zeros_like(h)
        scores, kept_counts, expected = [], [], []
        blocks = list(self.family.blocks(base))
        gather_at = max(self.boundaries) if self._trains_gathered() else None
        slots = None  # once gathered: (input positions (B, N), validity (B, N)) of the slots h holds
        for i in range(len(blocks) + 1):
            if i in self.ratios:
                s = self._scores(i, h, valid, None)  # (B, T)
                z = self.gate.sample(s) if cfg.gate == "hard_concrete" else torch.sigmoid(s)
                z = torch.where(eligible, z, torch.ones_like(z)).to(h.dtype)
                p = self.gate.prob_nonzero(s) if cfg.budget_prob == "hard_concrete" else torch.sigmoid(s)
                alive_p = alive_p * torch.where(eligible, p.float(), torch.ones_like(alive_p))
                expected.append(((alive_p * eligible).sum(1) / n_tokens.clamp(min=1)).mean())
                if cfg.restore == "last_state":  # what a dropped token leaves behind: its state here
                    restored = restored + ((alive_g * (1 - z))[..., None]) * h
                alive_g = alive_g * z
                alive = alive & (z > 0)
                kept_counts.append((alive & eligible).sum(1))
                scores.append(s.masked_fill(~valid, float("nan")))
                h = h * z[..., None]
                if log_gate is not None:
                    log_gate = log_gate + torch.log(z.float().clamp(min=LOG_GATE_FLOOR))
                if i == gather_at and i < len(blocks) and not bool((alive == valid).all()):
                    if cfg.restore == "last_state":  # padding leaves its state here, as at inference
                        restored = restored + (~valid)[..., None].to(h.dtype) * h
                    idx, valid = gather_kept(alive, self.window)  # (B, N)
                    slots = idx, valid
                    h = h.gather(1, idx[..., None].expand(-1, -1, d))
                    alive_g, global_ = alive_g.gather(1, idx), global_.gather(1, idx) & valid
                    log_gate = log_gate.gather(1, idx)
            if i < len(blocks):
                h = self._block(blocks[i], h, valid, log_gate, global_, impl)
        if slots is None:
            out = restored + alive_g[..., None] * h
        else:  # survivors back to their input positions; a gathered-out token keeps what `restored` holds
            idx, valid = slots
            out = restored.scatter_add(1, idx[..., None].expand(-1, -1, d), (alive_g * valid)[..., None] * h)
        info = RetentionInfo(self.boundaries, tuple(self.ratios[b] for b in self.boundaries), n_tokens,
                             torch.stack(kept_counts, 1), scores, alive, torch.stack(expected))
        return out, info

    def _trains_gathered(self) -> bool:
        """Whether training gathers: the switch is on and a dropped token's only trace forward is its ε-weighted key."""
        return self.config.train_gather and self.config.soft_mask == "states+attention"

    def _forward_eval(self, base, h, valid, special, impl, global_):
        """Top-M_l per example, gathered into a shorter tensor; full length rebuilt at the end."""
        cfg, (B, T, d) = self.config, h.shape
        n_tokens = (valid & ~special).sum(1)  # T of each example: what the budgets are fractions of
        positions = torch.arange(T, device=h.device).expand(B, T)  # (B, N) input position of each slot
        restored = None if cfg.restore == "last_state" else torch.zeros_like(h)
        scores, kept_counts = [], []
        blocks = list(self.family.blocks(base))
        for i in range(len(blocks) + 1):
            if i in self.ratios:
                eligible = valid & ~special
                s = self._scores(i, h, valid, positions)
                full = torch.full((B, T), float("nan"), device=h.device, dtype=s.dtype)
                scores.append(full.scatter(1, positions, s.masked_fill(~valid, float("nan"))))
                if self.threshold is not None:
                    keep = (special & valid) | (eligible & (torch.sigmoid(s) > self.threshold))
                elif self.ratios[i] >= 1.0:
                    keep = valid
                else:
                    m = torch.minimum(budget_counts(n_tokens, self.ratios[i]), eligible.sum(1))
                    keep = (special & valid) | select_top(s, eligible, m)
                kept_counts.append((keep & ~special).sum(1))
                if not bool((keep == valid).all()):
                    if cfg.restore == "last_state":  # a dropped token leaves its state here behind
                        restored = self._write_back(restored, h, positions, valid)
                    if cfg.gather:
                        idx, valid = gather_kept(keep, self.window)
                        h = h.gather(1, idx[..., None].expand(-1, -1, d))
                        positions, special = positions.gather(1, idx), special.gather(1, idx) & valid
                        global_ = global_.gather(1, idx) & valid
                    else:
                        valid = keep
            if i < len(blocks):
                h = self._block(blocks[i], h, valid, None, global_, impl)
        kept_mask = torch.zeros(B, T, dtype=torch.bool, device=h.device).scatter(1, positions, valid)
        if restored is None:  # nothing was dropped: h is already full length
            out = h
        else:
            out = self._write_back(restored, h, positions, valid)
        info = RetentionInfo(self.boundaries, tuple(self.ratios[b] for b in self.boundaries), n_tokens,
                             torch.stack(kept_counts, 1), scores, kept_mask)
        return out, info

    @staticmethod
    def _write_back(restored, h, positions, valid):
        """Scatter the valid slots of h (B, N, d) to their input positions in restored (B, T, d)."""
        if restored is None:  # first drop: the slots are still the input positions, in order
            return h.clone()
        idx = positions[..., None].expand(-1, -1, h.shape[-1])
        return restored.scatter(1, idx, torch.where(valid[..., None], h, restored.gather(1, idx)))


# ---------------------------------------------------------------------------------------------
# Public API.


def _retention_forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                       inputs_embeds=None, special_tokens_mask=None, global_attention_mask=None, **kwargs):
    """Replaces the base encoder's forward; same arguments, output plus `.retention`.

    Sliding-window encoders get their input padded to a multiple of the window here (padding slots are
    masked) and the padding cut off the output, as their own forward does."""
    retention: Retention = self.retention
    h = retention.family.embed(self, input_ids, token_type_ids, position_ids, inputs_embeds)  # (B, T, d)
    T = h.shape[1]
    valid = attention_mask.bool() if attention_mask is not None else torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
    global_ = global_attention_mask.bool() & valid if global_attention_mask is not None else torch.zeros_like(valid)
    special = retention.special_mask(input_ids, valid, special_tokens_mask) | global_  # global tokens are always kept
    pad = packed_length(T, retention.window) - T
    if pad:
        h = nn.functional.pad(h, (0, 0, 0, pad))
        valid, special, global_ = (nn.functional.pad(m, (0, pad), value=False) for m in (valid, special, global_))
    h, info = retention(self, h, valid, special, self.config._attn_implementation, global_)
    if pad:
        h = h[:, :T]
        info = replace(info, scores=[s[:, :T] for s in info.scores], kept_mask=info.kept_mask[:, :T])
    retention.last_info = info
    return RetentionModelOutput(last_hidden_state=h, pooler_output=retention.family.pool(self, h), retention=info)


def _attach_info(module, args, output):
    """Forward hook on a model with a head: carry the base's RetentionInfo on the head's output."""
    if isinstance(output, ModelOutput):
        output.retention = module.base_model.retention.last_info
    return output


def apply_retention(model: nn.Module, config: RetentionConfig, special_token_ids: Iterable[int] | None = None) -> nn.Module:
    """Add learned token retention to a Hugging Face encoder (any head), in place; returns the model.

    `special_token_ids` (e.g. `tokenizer.all_special_ids`) are always kept; without it the model
    config's cls/sep/bos/eos ids and each example's first and last token are. A forward call may
    also pass `special_tokens_mask` (as the tokenizer returns it).
    """
    if not isinstance(config, RetentionConfig):
        raise TypeError(f"config must be a RetentionConfig, got {type(config).__name__}")
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(f"unsupported model family {model_type!r}; supported: {sorted(FAMILIES)} "
                         "(BigBird and decoder models are not supported yet)")
    impl = model.config._attn_implementation
    if impl not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"unsupported attention implementation {impl!r}; supported: {list(ATTENTION_IMPLEMENTATIONS)}")
    base = model.base_model
    if hasattr(base, "retention"):
        raise ValueError("this model already has retention applied")
    family = FAMILIES[model_type]
    num_layers = len(family.blocks(base))
    if config.start_layer >= num_layers:
        raise ValueError(f"start_layer must lie in [0, {num_layers - 1}] for this {num_layers}-layer model, got {config.start_layer}")
    if special_token_ids is None:
        special_token_ids = [v for k in ("cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id")
                             if (v := getattr(model.config, k, None)) is not None]
    device = next(model.parameters()).device
    base.retention = Retention(config, family, model.config.hidden_size, num_layers, special_token_ids,
                               family.window(model.config)).to(device).train(model.training)
    base.forward = types.MethodType(_retention_forward, base)
    if model is not base:
        model.register_forward_hook(_attach_info)
    return model


def info_of(output) -> RetentionInfo | None:
    """The RetentionInfo a forward call returned (on a ModelOutput, or under a dict's 'retention' key)."""
    return output.get("retention") if isinstance(output, dict) and not isinstance(output, ModelOutput) else getattr(output, "retention", None)


def retention_of(model: nn.Module) -> Retention:
    """The Retention module of a model that has it."""
    base = model.base_model
    if not hasattr(base, "retention"):
        raise ValueError("this model has no retention; call apply_retention first")
    return base.retention
