"""A learned, budgeted KV cache (issue 19): the paper's Hard-Concrete retention gates carried to a causal LM.

Per layer, a scorer (`gates.MLPScorer`) reads each token's hidden state as the token enters the cache (the input of
that layer's attention) and gives log α_t, fixed from then on — one per layer, or one per KV head (`heads`: each KV
head then keeps its own entries, as a per-head press does). Training (the LM frozen): a gate z̃_t ~ HardConcrete(log α_t)
multiplies token t's attention weight for every later query that would see it only through the budget — not the
sinks (positions < `sinks`) and not within the recent window (query − key < `window`), which the cache keeps anyway —
as log z̃_t added to those attention logits, as the encoder's gates do (SPEC §1). The expected kept fraction,
mean P(z̃_t > 0) per layer, goes to `budget.DualController`. Inference: the cache of part 1 with score "learned" —
the entries of highest log α stay (top-M, evict lowest).

`GatedAttention` switches a model between its own SDPA attention and the gated one: a forward pre-hook on each
attention module computes that layer's gates from its input; the registered attention function
(`ATTENTION`) adds them to the logits. Rows of a batch must not be padded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from ..config import check_choice
from ..gates import LOG_GATE_FLOOR, HardConcrete, MLPScorer
from ..io import atomic_path
from .cache import attention_modules, hook_hidden_states, kv_heads
from .defaults import SINKS, WINDOW
from .train_config import GATES

ATTENTION = "retention_gates"  # the attention implementation name registered with transformers


class CacheGates(nn.Module):
    """One scorer per decoder layer: log α (B, heads, T) from the hidden states (B, T, d) that enter the layer's
    attention; heads = 1 (one gate per token and layer) or the model's KV heads (one per token and KV head)."""

    def __init__(self, hidden: int, layers: int, init_keep: float = 0.9, heads: int = 1):
        super().__init__()
        if not 0.0 < init_keep < 1.0:
            raise ValueError(f"init_keep is the gates' starting P(z > 0), in (0, 1); got {init_keep}")
        if heads < 1:
            raise ValueError(f"heads must be ≥ 1, got {heads}")
        self.config = dict(hidden=hidden, layers=layers, init_keep=init_keep, heads=heads)
        bias = HardConcrete().log_alpha_for(init_keep)
        self.scorers = nn.ModuleList(MLPScorer(hidden, init_bias=bias, outputs=heads) for _ in range(layers))

    @classmethod
    def for_model(cls, model: nn.Module, init_keep: float = 0.9, per_kv_head: bool = False) -> "CacheGates":
        config = model.config.get_text_config(decoder=True)
        return cls(config.hidden_size, config.num_hidden_layers, init_keep, kv_heads(model) if per_kv_head else 1)

    def forward(self, layer: int, hidden_states: torch.Tensor) -> torch.Tensor:
        scores = self.scorers[layer](hidden_states.float())
        return scores[:, None] if self.config["heads"] == 1 else scores                     # (B, heads, T)

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"config": self.config, "state": self.state_dict()}, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "CacheGates":
        """Gates saved by `save`, or the gates inside a training checkpoint (OUT.ckpt: a run still training)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no learned cache gates at {path}")
        saved = torch.load(path, map_location="cpu", weights_only=path.suffix != ".ckpt")
        if "gates" in saved:  # a checkpoint: the shapes give the configuration
            state = saved["gates"]
            layers = 1 + max(int(k.split(".")[1]) for k in state)
            config = dict(hidden=state["scorers.0.net.0.weight"].shape[1], layers=layers,
                          init_keep=saved["config"]["init_keep"], heads=state["scorers.0.net.2.weight"].shape[0])
        else:
            state, config = saved["state"], saved["config"]
        gates = cls(**config)
        gates.load_state_dict(state)
        return gates.eval()


def gate_bias(log_gate: torch.Tensor, queries: int, sinks: int, window: int) -> torch.Tensor:
    """The additive attention mask of a gated layer: causal, plus log z̃_k where query q sees key k only through the
    budget (k ≥ sinks and q − k ≥ window). log_gate (B, H, T) → (B, H, queries, T); the queries are the last ones."""
    t = log_gate.shape[-1]
    q = torch.arange(t - queries, t, device=log_gate.device)[:, None]
    k = torch.arange(t, device=log_gate.device)[None, :]
    causal = torch.zeros(queries, t, device=log_gate.device).masked_fill(k > q, float("-inf"))
    gated = (k >= sinks) & (q - k >= window)                                                 # (queries, T)
    return causal + torch.where(gated, log_gate[:, :, None, :], 0.0)


def gated_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """SDPA with the module's current gates on the logits (plain causal SDPA when it has none). Per-KV-head gates
    reach every query head of their group (query head i reads KV head i // (Hq / Hkv), as SDPA's GQA does)."""
    state = getattr(module, "_retention_gate", None)
    if state is None:  # no gates: no budget applies, every key is kept
        bias = gate_bias(query.new_zeros(query.shape[0], 1, key.shape[2]), query.shape[2], sinks=key.shape[2], window=0)
    else:
        log_gate, sinks, window = state
        bias = gate_bias(log_gate, query.shape[2], sinks, window)                           # (B, 1 or Hkv, q, T)
        if bias.shape[1] > 1:
            bias = bias.repeat_interleave(query.shape[1] // bias.shape[1], dim=1)           # (B, Hq, q, T)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias.to(query.dtype), dropout_p=dropout,
                                         scale=scaling, enable_gqa=True)                   # (B, H, q, D)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, gated_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)


class GatedAttention:
    """`with GatedAttention(model, gates, sinks, window, sample=True) as g: model(ids)` runs the model with its
    attention gated; g.expected_kept then holds each layer's (per-KV-head gates: each layer and head's) mean
    P(z̃ > 0) over the gated tokens, (layers × heads,).
    sample=False uses the deterministic test-time gate. gate="sigmoid": z = σ(log α) and kept = mean z."""

    def __init__(self, model: nn.Module, gates: CacheGates, sinks: int = SINKS, window: int = WINDOW,
                 sample: bool = True, gate: str = "hard_concrete", hard_concrete: HardConcrete | None = None):
        check_choice("gate", gate, GATES)
        self.model, self.gates, self.sinks, self.window, self.sample = model, gates, sinks, window, sample
        self.gate = gate
        self.hc = hard_concrete or HardConcrete()
        self.attention = attention_modules(model)
        if len(self.attention) != gates.config["layers"]:
            raise ValueError(f"{len(self.attention)} attention modules but gates for {gates.config['layers']} layers")
        self.kept: list[torch.Tensor] = []
        self.log_alphas: list[torch.Tensor] = []  # each layer's log α (B, H, T), in layer order

    @property
    def expected_kept(self) -> torch.Tensor:
        return torch.cat(self.kept)

    def _gate(self, module, args, kwargs):
        log_alpha = self.gates(module.layer_idx, hook_hidden_states(args, kwargs))          # (B, H, T)
        self.log_alphas.append(log_alpha)
        if self.gate == "sigmoid":
            z = torch.sigmoid(log_alpha)
            kept = z[..., self.sinks:]
        else:
            z = self.hc.sample(log_alpha) if self.sample else self.hc.deterministic(log_alpha)
            kept = self.hc.prob_nonzero(log_alpha[..., self.sinks:])
        module._retention_gate = (torch.log(z.clamp(min=LOG_GATE_FLOOR)), self.sinks, self.window)
        # (H,); one head: the plain mean, the reduction per-layer runs have always used (their traces bit for bit)
        self.kept.append(kept.mean()[None] if kept.shape[1] == 1 else kept.mean(dim=(0, 2)))

    def __enter__(self) -> "GatedAttention":
        self.previous = self.model.config._attn_implementation
        self.model.set_attn_implementation(ATTENTION)
        self.hooks = [m.register_forward_pre_hook(self._gate, with_kwargs=True) for m in self.attention]
        self.kept, self.log_alphas = [], []
        return self

    def __exit__(self, *exc) -> None:
        for hook in self.hooks:
            hook.remove()
        for module in self.attention:
            module._retention_gate = None
        self.model.set_attn_implementation(self.previous)
