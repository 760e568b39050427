"""Distillation toward the fine-tuned full model: an optional loss beside the paper's (README "Distillation").

The paper trains with the task loss and the budget penalty only. Cutting tokens while the budget closes
the gates also moves the backbone away from what it had learned; PoWER-BERT, LTP and ToP pull the
retained model toward the unpruned one. Here the teacher is the warm-start checkpoint (`init_from`, the
same task's full model), frozen; the loss is Hinton's softened KL, T² · KL(p_teacher^T ‖ p_student^T),
on each task kind's outputs:
- classification: the class logits (B, C);
- QA: start and end logits over the window's tokens (B, T), padding excluded, the two averaged;
- summarisation: each sentence's keep logit, an independent Bernoulli (B, S), sentences present only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def softened_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """T² · mean over rows of KL(softmax(teacher/T) ‖ softmax(student/T)) over the last axis; `valid` (same shape, bool)
    marks the entries of a row that exist (padding positions get probability 0 on both sides)."""
    s, t = student.float() / temperature, teacher.float() / temperature
    if valid is not None:
        s, t = s.masked_fill(~valid, float("-inf")), t.masked_fill(~valid, float("-inf"))
    log_p_s, log_p_t = F.log_softmax(s, -1), F.log_softmax(t, -1)
    terms = torch.where(log_p_t > float("-inf"), log_p_t.exp() * (log_p_t - log_p_s), torch.zeros_like(log_p_t))
    return terms.sum(-1).mean() * temperature ** 2


def bernoulli_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float, valid: torch.Tensor) -> torch.Tensor:
    """T² · mean over valid entries of KL(Bern(σ(teacher/T)) ‖ Bern(σ(student/T))): independent sentence decisions."""
    s, t = student.float()[valid] / temperature, teacher.float()[valid] / temperature
    p = torch.sigmoid(t)
    kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean() * temperature ** 2


def distill_loss(kind: str, student: dict, teacher: dict, batch: dict, temperature: float) -> torch.Tensor:
    """The distillation loss of one batch for a task kind; student/teacher: the models' output dicts."""
    if kind == "classification":
        return softened_kl(student["logits"], teacher["logits"], temperature)
    if kind == "qa":
        valid = batch["attention_mask"].bool()
        return (softened_kl(student["start_logits"], teacher["start_logits"], temperature, valid)
                + softened_kl(student["end_logits"], teacher["end_logits"], temperature, valid)) / 2
    if kind == "summarization":
        return bernoulli_kl(student["logits"], teacher["logits"], temperature, torch.isfinite(teacher["logits"]))
    raise ValueError(f"no distillation loss for task kind {kind!r}")
