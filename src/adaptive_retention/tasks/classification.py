"""Sequence classification (SST-2, IMDb, CUAD clause types, arXiv categories): [CLS] head, accuracy / F1."""

from __future__ import annotations

import numpy as np


INPUTS = {"input_ids": 0, "attention_mask": 0, "labels": None}  # model input -> padding value (None: one per feature)


def featurize(examples: list[dict], tokenizer, max_length: int, **_) -> list[dict]:
    """One feature per example: token ids truncated to `max_length`, and the label."""
    enc = tokenizer([e["text"] for e in examples], truncation=True, max_length=max_length)
    return [{"input_ids": ids, "attention_mask": mask, "labels": e["label"], "example_index": i}
            for i, (e, ids, mask) in enumerate(zip(examples, enc["input_ids"], enc["attention_mask"]))]


def build_model(source, num_labels: int, pretrained: bool = True, **_):
    """From pretrained weights at `source` (a folder or hub id), or an untrained model from a config."""
    from transformers import AutoModelForSequenceClassification as Auto

    return Auto.from_pretrained(source, num_labels=num_labels) if pretrained else Auto.from_config(source)


def predict(outputs: list[dict], features: list[dict], examples: list[dict], **_) -> list[int]:
    """outputs: one {"logits": (C,)} per feature, in feature order."""
    return [int(np.argmax(o["logits"])) for o in outputs]


def per_example(predictions: list[int], examples: list[dict], **_) -> dict[str, list[float]]:
    """Each example's share of the metrics that are means (%): accuracy, and micro-F1, which equals accuracy for
    single-label classes; paired tests compare them example by example (macro-F1 is not a mean: recompute it from the
    predictions)."""
    correct = [100.0 * (p == e["label"]) for p, e in zip(predictions, examples)]
    return {"accuracy": correct, "f1_micro": correct}


def constant_prediction(examples: list[dict]) -> list[int]:
    """The best constant prediction on these examples (the majority label): the chance level of every table."""
    labels = [e["label"] for e in examples]
    return [max(set(labels), key=lambda y: (labels.count(y), -y))] * len(labels)


def score(predictions: list[int], examples: list[dict], num_labels: int | None = None, **_) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score  # here: importing scikit-learn costs a training job 2 s

    gold = [e["label"] for e in examples]
    labels = list(range(num_labels)) if num_labels else None
    return {
        "accuracy": 100.0 * accuracy_score(gold, predictions),
        "f1_micro": 100.0 * f1_score(gold, predictions, average="micro", labels=labels, zero_division=0),
        "f1_macro": 100.0 * f1_score(gold, predictions, average="macro", labels=sorted(set(gold)), zero_division=0),
    }
