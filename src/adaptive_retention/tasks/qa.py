"""Extractive QA (SQuAD, QASPER): sliding windows over long contexts, span decoding over the restored
token logits, SQuAD-normalised EM / F1 with the max over gold answers (the official v1.1 script's rules)."""

from __future__ import annotations

import collections
import re
import string

import numpy as np

from ..data import DataError


INPUTS = {"input_ids": 0, "attention_mask": 0, "token_type_ids": 0, "start_positions": None, "end_positions": None}


def _check_room(examples: list[dict], tokenizer, max_length: int, stride: int) -> None:
    """Each window must hold the question, the special tokens and more context than the overlap (else the tokenizer fails
    with an error that names neither the example nor the setting)."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids) for ids in tokenizer([e["question"].lstrip() for e in examples], add_special_tokens=False)["input_ids"]]
    if lengths and max(lengths) + specials + stride >= max_length:
        i = max(range(len(lengths)), key=lengths.__getitem__)
        raise DataError(f"QA example {examples[i]['id']}: its question is {lengths[i]} tokens; with stride {stride} a window needs "
                        f"max_length > {lengths[i] + specials + stride} (got {max_length}); raise max_length or lower stride")


def featurize(examples: list[dict], tokenizer, max_length: int, stride: int = 128, **_) -> list[dict]:
    """Windows of question + context; gold span as token positions ([CLS] = 0 when not in the window)."""
    _check_room(examples, tokenizer, max_length, stride)
    enc = tokenizer([e["question"].lstrip() for e in examples], [e["context"] for e in examples], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    features = []
    for i, ids in enumerate(enc["input_ids"]):
        ex_idx = enc["overflow_to_sample_mapping"][i]
        seq = enc.sequence_ids(i)
        offsets = [o if seq[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][i])]
        ctx = [k for k, s in enumerate(seq) if s == 1]
        answers = examples[ex_idx]["answers"]
        start = end = 0
        if answers["text"]:
            a_start = answers["answer_start"][0]
            a_end = a_start + len(answers["text"][0])
            if offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                start = next(k for k in ctx if offsets[k][1] > a_start)
                end = next(k for k in reversed(ctx) if offsets[k][0] < a_end)
        feat = {"input_ids": ids, "attention_mask": enc["attention_mask"][i], "start_positions": start, "end_positions": end,
                "offset_mapping": offsets, "example_index": ex_idx}
        if "token_type_ids" in enc:
            feat["token_type_ids"] = enc["token_type_ids"][i]
        features.append(feat)
    return features


def build_model(source, pretrained: bool = True, **_):
    from transformers import AutoModelForQuestionAnswering as Auto

    return Auto.from_pretrained(source) if pretrained else Auto.from_config(source)


def predict(outputs: list[dict], features: list[dict], examples: list[dict], n_best: int = 20, max_answer_tokens: int = 30, **_) -> list[str]:
    """Best span over every window of each example: max start + end logit, start ≤ end, inside the context."""
    best: dict[int, tuple[float, str]] = {}
    for out, feat in zip(outputs, features):
        start_logits, end_logits = np.asarray(out["start_logits"]), np.asarray(out["end_logits"])
        offsets, context = feat["offset_mapping"], examples[feat["example_index"]]["context"]
        n = min(len(offsets), len(start_logits))
        starts = np.argsort(start_logits[:n])[::-1][:n_best]
        ends = np.argsort(end_logits[:n])[::-1][:n_best]
        for s in starts:
            for e in ends:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_tokens:
                    continue
                value = float(start_logits[s] + end_logits[e])
                if feat["example_index"] not in best or value > best[feat["example_index"]][0]:
                    best[feat["example_index"]] = (value, context[offsets[s][0]: offsets[e][1]])
    return [best.get(i, (0.0, ""))[1] for i in range(len(examples))]


# --- SQuAD v1.1 official evaluation rules -----------------------------------------------------


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def per_example(predictions: list[str], examples: list[dict], **_) -> dict[str, list[float]]:
    """Each example's exact match and F1 (%, best over its gold answers): the metrics are their means; paired tests
    compare them example by example."""
    return {"exact_match": [100.0 * max(exact_match(p, g) for g in e["answers"]["text"]) for p, e in zip(predictions, examples)],
            "f1": [100.0 * max(f1(p, g) for g in e["answers"]["text"]) for p, e in zip(predictions, examples)]}


def constant_prediction(examples: list[dict]) -> list[str]:
    """A prediction that reads nothing (the empty answer): the chance level of every table."""
    return [""] * len(examples)


def score(predictions: list[str], examples: list[dict], each: dict | None = None, **_) -> dict[str, float]:
    """The means of `per_example` (`each`, if already computed)."""
    each = per_example(predictions, examples) if each is None else each
    return {name: float(np.mean(values)) for name, values in each.items()}
