"""Task kinds: features from real data with the MiniLM tokenizer, gold spans decode back, metrics by hand."""


import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from adaptive_retention.backbones import resolve_model_path
from adaptive_retention.data import load_examples
from adaptive_retention.config import RetentionConfig
from adaptive_retention.modeling import apply_retention
from adaptive_retention.tasks import classification, qa, summarization

from test_data import SHARED


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(resolve_model_path("minilm"))


@pytest.mark.parametrize("task,max_length", [("sst2", 64), ("imdb", 256), ("cuad", 128), ("arxiv-category", 512)])
def test_classification_features(task, max_length, tok):
    s = load_examples(task, "eval", "local", SHARED, size=20)
    feats = classification.featurize(s.examples, tok, max_length)
    assert len(feats) == len(s.examples)
    assert all(len(f["input_ids"]) <= max_length and len(f["input_ids"]) == len(f["attention_mask"]) for f in feats)
    assert all(0 <= f["labels"] < max(2, len(s.labels)) for f in feats)
    assert all(f["input_ids"][0] == tok.cls_token_id and f["input_ids"][-1] == tok.sep_token_id for f in feats)


@pytest.mark.parametrize("task,max_length,stride", [("squad", 384, 128), ("qasper", 512, 128)])
def test_qa_gold_spans_decode_back_to_the_gold_text(task, max_length, stride, tok):
    s = load_examples(task, "train", "local", SHARED, size=40 if task == "squad" else None)
    feats = qa.featurize(s.examples, tok, max_length, stride=stride)
    assert {f["example_index"] for f in feats} == set(range(len(s.examples)))
    assert all(len(f["input_ids"]) <= max_length for f in feats)
    if task == "qasper":
        assert max(sum(f["example_index"] == i for f in feats) for i in range(len(s.examples))) > 1  # long: many windows
    outputs = []
    for f in feats:  # logits that point at the gold span of the window (or at [CLS] when it is not in it)
        start, end = np.full(len(f["input_ids"]), -10.0), np.full(len(f["input_ids"]), -10.0)
        start[f["start_positions"]], end[f["end_positions"]] = 10.0, 10.0
        if f["start_positions"] == 0:
            start[0] = end[0] = -20.0
        outputs.append({"start_logits": start, "end_logits": end})
    preds = qa.predict(outputs, feats, s.examples, max_answer_tokens=512)
    # SQuAD answers fit in a window: every one decodes back exactly (modulo SQuAD normalisation)
    hits = [qa.exact_match(p, e["answers"]["text"][0]) for p, e in zip(preds, s.examples)]
    assert np.mean(hits) == 1.0 if task == "squad" else np.mean(hits) >= 0.9


def test_summarization_features_and_oracle(tok):
    s = load_examples("pubmed", "eval", "local", SHARED)
    feats = summarization.featurize(s.examples, tok, 512, k=3)
    for f, e in zip(feats, s.examples):
        assert len(f["input_ids"]) == len(f["sentence_index"]) <= 512
        n = max(f["sentence_index"]) + 1
        assert len(f["sentence_labels"]) == n and 1 <= sum(f["sentence_labels"]) <= 3
        assert f["sentence_index"][0] == -1 and f["sentence_index"][-1] == -1


def test_sentence_extractor_with_retention_runs(tok):
    s = load_examples("pubmed", "eval", "local", SHARED)
    feats = summarization.featurize(s.examples[:2], tok, 256, k=3)
    model = summarization.build_model(resolve_model_path("minilm"))
    apply_retention(model, RetentionConfig(ratio=0.3), tok.all_special_ids)
    pad = lambda key, v: torch.tensor([f[key] + [v] * (256 - len(f[key])) for f in feats])
    labels = torch.tensor([f["sentence_labels"] + [-1.0] * (40 - len(f["sentence_labels"])) for f in feats])
    model.eval()
    with torch.no_grad():
        out = model(pad("input_ids", 0), pad("attention_mask", 0), pad("sentence_index", -1), labels[:, : int(pad("sentence_index", -1).max()) + 1])
    assert torch.isfinite(out["loss"]) and out["retention"].kept_counts.shape == (2, 1)
    preds = summarization.predict([{"logits": o} for o in out["logits"].numpy()], feats, s.examples[:2], k=3)
    assert all(len(p.split("\n")) == 3 for p in preds)


# --- metrics, by hand ----------------------------------------------------------------------------


@pytest.mark.parametrize("a,b,norm_equal", [("The Cat!", "cat", True), ("an apple, a pear", "apple pear", True),
                                            ("Paris ", "  paris", True), ("Paris.", "Paris, France", False)])
def test_squad_normalisation(a, b, norm_equal):
    assert (qa.normalize_answer(a) == qa.normalize_answer(b)) == norm_equal


def test_em_f1_hand_computed():
    # "the big red dog" vs "red dog": normalised tokens [big, red, dog] vs [red, dog]: P = 2/3, R = 1, F1 = 0.8
    assert qa.f1("the big red dog", "red dog") == pytest.approx(0.8)
    assert qa.exact_match("The red dog.", "red dog") == 1.0
    ex = [{"answers": {"text": ["red dog", "a dog"]}}, {"answers": {"text": ["Paris"]}}]
    m = qa.score(["big dog", "London"], ex)  # max over gold: F1("big dog","a dog") = 2·(1/2·1)/(3/2) = 2/3
    assert m["exact_match"] == 0.0 and m["f1"] == pytest.approx(100 * (2 / 3) / 2)


def test_rouge_known_values():
    ex = [{"abstract": "the cat sat on the mat"}]
    assert summarization.score(["the cat sat on the mat"], ex)["rouge1"] == pytest.approx(100.0)
    # unigrams: 3 of 6 reference tokens ("the", "cat", "the"→ one 'the' matched twice? no: clipped counts)
    # prediction "the cat" : P = 2/2, R = 2/6 → F1 = 2·1·(1/3)/(4/3) = 0.5 ; bigrams: "the cat" 1/1 and 1/5 → F1 = 1/3
    m = summarization.score(["the cat"], ex)
    assert m["rouge1"] == pytest.approx(50.0) and m["rouge2"] == pytest.approx(100 / 3)
    assert m["rougeL"] == pytest.approx(50.0)


def test_micro_vs_macro_f1_on_an_imbalanced_toy():
    # 8 of class 0, 2 of class 1; predict all 0: accuracy = micro F1 = 80 %;
    # macro F1 = mean(F1_0 = 2·0.8·1/1.8 = 0.888…, F1_1 = 0) = 44.4 %
    ex = [{"label": 0}] * 8 + [{"label": 1}] * 2
    m = classification.score([0] * 10, ex, num_labels=2)
    assert m["accuracy"] == pytest.approx(80.0) and m["f1_micro"] == pytest.approx(80.0)
    assert m["f1_macro"] == pytest.approx(100 * (16 / 18) / 2)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6).flatmap(lambda c: st.lists(st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), min_size=1, max_size=40)
                                 .map(lambda pairs: (c, pairs))))
def test_per_example_scores_average_to_the_metrics(labelled):
    """What paired tests compare is what the tables report: each metric that is a mean is the mean of its per-example
    scores (micro-F1 of single-label classes is accuracy)."""
    c, pairs = labelled
    predictions, examples = [p for p, _ in pairs], [{"label": g} for _, g in pairs]
    metrics, each = classification.score(predictions, examples, num_labels=c), classification.per_example(predictions, examples)
    assert set(each) == {"accuracy", "f1_micro"} and all(np.mean(each[m]) == pytest.approx(metrics[m]) for m in each)
    qa_ex = [{"answers": {"text": ["red dog", "a dog"]}}, {"answers": {"text": ["Paris"]}}, {"answers": {"text": ["Paris"]}}]
    qa_pred = ["big dog", "London", "paris"]
    assert {m: np.mean(v) for m, v in qa.per_example(qa_pred, qa_ex).items()} == pytest.approx(qa.score(qa_pred, qa_ex))
    sum_ex = [{"abstract": "the cat sat on the mat"}, {"abstract": "a dog ran"}]
    sums = ["the cat", "a dog ran home"]
    assert {m: np.mean(v) for m, v in summarization.per_example(sums, sum_ex).items()} == pytest.approx(summarization.score(sums, sum_ex))


def test_greedy_oracle_picks_the_matching_sentences():
    sents = ["cells were counted .", "the weather was nice .", "mice were treated ."]
    assert summarization.greedy_oracle(sents, "cells counted and mice treated .", k=3) == [0, 2]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40))
def test_chance_is_the_best_constant_prediction(gold):
    """The chance level the tables state: no constant label scores more accuracy than the majority label; a prediction
    that reads nothing scores 0 on QA and summarisation."""
    examples = [{"label": g} for g in gold]
    chance = classification.score(classification.constant_prediction(examples), examples, num_labels=5)
    best = max(classification.score([c] * len(gold), examples, num_labels=5)["accuracy"] for c in range(5))
    assert chance["accuracy"] == pytest.approx(best) == pytest.approx(100 * max(map(gold.count, set(gold))) / len(gold))
    qa_ex = [{"answers": {"text": ["Paris"]}}] * 2
    assert qa.score(qa.constant_prediction(qa_ex), qa_ex) == {"exact_match": 0.0, "f1": 0.0}
    sum_ex = [{"abstract": "the cat sat"}]
    assert set(summarization.score(summarization.constant_prediction(sum_ex), sum_ex).values()) == {0.0}
