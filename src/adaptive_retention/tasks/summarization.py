"""Extractive summarisation (PubMed, ArXiv): sentences as the data gives them, greedy ROUGE oracle
labels, a sentence scorer over the restored token states, the top-k sentences, ROUGE-1/2/L."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ORACLE_TYPES = ("rouge1", "rouge2")


@functools.cache
def rouge(types: tuple[str, ...]):
    """A stemming ROUGE scorer of `types`, built on first use: importing rouge-score (and NLTK) costs every job 2 s."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(types), use_stemmer=True)


def greedy_oracle(sentences: list[str], abstract: str, k: int) -> list[int]:
    """Indices of ≤ k sentences chosen greedily to maximise mean ROUGE-1/2 F1 against the abstract;
    stops when no sentence improves it (Nallapati et al. 2017; Liu & Lapata 2019)."""
    chosen: list[int] = []
    best = 0.0
    while len(chosen) < k:
        gains = []
        for i in range(len(sentences)):
            if i in chosen:
                continue
            summary = "\n".join(sentences[j] for j in sorted(chosen + [i]))
            s = rouge(ORACLE_TYPES).score(abstract, summary)
            gains.append(((s["rouge1"].fmeasure + s["rouge2"].fmeasure) / 2, i))
        if not gains:
            break
        value, i = max(gains, key=lambda g: (g[0], -g[1]))
        if value <= best:
            break
        best, chosen = value, chosen + [i]
    return sorted(chosen)


INPUTS = {"input_ids": 0, "attention_mask": 0, "sentence_index": -1, "sentence_labels": -1.0}


def featurize(examples: list[dict], tokenizer, max_length: int, k: int = 3, **_) -> list[dict]:
    """[CLS] s_1 … s_n [SEP] truncated to max_length; each token's sentence index (−1 for special
    tokens); one oracle label per sentence that fits."""
    features = []
    for i, e in enumerate(examples):
        ids, sent_idx = [tokenizer.cls_token_id], [-1]
        for s_i, sentence in enumerate(e["sentences"]):
            toks = tokenizer(sentence, add_special_tokens=False)["input_ids"]
            room = max_length - 1 - len(ids)
            if room <= 0:
                break
            ids += toks[:room]
            sent_idx += [s_i] * len(toks[:room])
        ids.append(tokenizer.sep_token_id)
        sent_idx.append(-1)
        n_sent = max(sent_idx) + 1
        oracle = set(greedy_oracle(e["sentences"][:n_sent], e["abstract"], k))
        features.append({"input_ids": ids, "attention_mask": [1] * len(ids), "sentence_index": sent_idx,
                         "sentence_labels": [float(j in oracle) for j in range(n_sent)], "example_index": i})
    return features


class SentenceExtractor(nn.Module):
    """An encoder and a linear scorer over each sentence's mean restored token state."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.scorer = nn.Linear(encoder.config.hidden_size, 1)

    @property
    def base_model(self):
        return self.encoder

    def forward(self, input_ids, attention_mask, sentence_index, sentence_labels=None, **kwargs):
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        h = out.last_hidden_state  # (B, T, d), full length (drop-and-restore)
        S = int(sentence_index.max()) + 1 if sentence_index.numel() else 0
        onehot = torch.nn.functional.one_hot(sentence_index.clamp(min=0), max(S, 1)).to(h.dtype)
        onehot = onehot * (sentence_index >= 0)[..., None].to(h.dtype)  # (B, T, S)
        counts = onehot.sum(1)  # (B, S)
        pooled = torch.einsum("bts,btd->bsd", onehot, h) / counts.clamp(min=1)[..., None]
        logits = self.scorer(pooled).squeeze(-1).masked_fill(counts == 0, float("-inf"))  # (B, S)
        loss = None
        if sentence_labels is not None:
            present = (counts > 0) & (sentence_labels >= 0)
            loss = nn.functional.binary_cross_entropy_with_logits(logits[present], sentence_labels[present].to(logits.dtype))
        return {"loss": loss, "logits": logits, "retention": getattr(out, "retention", None)}


def build_model(source, pretrained: bool = True, **_):
    from transformers import AutoModel

    return SentenceExtractor(AutoModel.from_pretrained(source) if pretrained else AutoModel.from_config(source))


def predict(outputs: list[dict], features: list[dict], examples: list[dict], k: int = 3, **_) -> list[str]:
    """The k highest-scoring sentences of each example, in document order, one per line."""
    summaries = []
    for out, feat in zip(outputs, features):
        logits = np.asarray(out["logits"], dtype=float)
        n = len(feat["sentence_labels"])
        top = sorted(np.argsort(-logits[:n], kind="stable")[:k].tolist())
        summaries.append("\n".join(examples[feat["example_index"]]["sentences"][j] for j in top))
    return summaries


def per_example(predictions: list[str], examples: list[dict], **_) -> dict[str, list[float]]:
    """Each summary's ROUGE F-measures (%): the metrics are their means; paired tests compare them example by example."""
    scores = [rouge(ROUGE_TYPES).score(e["abstract"], p) for p, e in zip(predictions, examples)]
    return {t: [100.0 * s[t].fmeasure for s in scores] for t in ROUGE_TYPES}


def constant_prediction(examples: list[dict]) -> list[str]:
    """A prediction that reads nothing (the empty summary): the chance level of every table."""
    return [""] * len(examples)


def score(predictions: list[str], examples: list[dict], each: dict | None = None, **_) -> dict[str, float]:
    """The means of `per_example` (`each`, if already computed: ROUGE is the slow part of scoring)."""
    each = per_example(predictions, examples) if each is None else each
    return {name: float(np.mean(values)) for name, values in each.items()}
