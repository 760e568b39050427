"""The training job's streamed data path equals the materialised one: the same examples (subsample included),
the same features featurised a chunk at a time and stored compactly, the same batches."""

import datasets
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from adaptive_retention.backbones import resolve_model_path
from adaptive_retention.data import get_task, iter_records, load_examples, stream_examples
from adaptive_retention.prepare import prepare_data
from adaptive_retention.tasks import collate, compact, featurize_stream, kind_module
from adaptive_retention.config import TrainConfig
from adaptive_retention.train import training_data

DATA = "../shared/data"


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(resolve_model_path("minilm"))


@pytest.mark.parametrize("task,size", [("cuad", 40), ("cuad", None), ("pubmed", 5), ("squad", 12), ("arxiv-category", 7)])
def test_streamed_examples_equal_loaded_ones(task, size):
    loaded = load_examples(task, "train", "local", DATA, size=size, seed=3)
    head, n, stream = stream_examples(task, "train", "local", DATA, size=size, seed=3)
    examples = list(stream)
    assert examples == loaded.examples and n == len(examples) and head.labels == loaded.labels and head.origin == loaded.origin


@pytest.mark.parametrize("task,split,size", [("sst2", "train", 48), ("sst2", "dev", 30), ("squad", "train", 12), ("cuad", "dev", None)])
def test_streamed_examples_from_a_prepared_snapshot_equal_loaded_ones(task, split, size, tmp_path):
    """The path of every workflow job: Arrow records read in chunks, only the chosen ones converted twice; the dev
    and train splits carve rows out of the snapshot's training records."""
    prepare_data(task, "local", DATA, tmp_path / task)
    loaded = load_examples(task, split, "prepared", tmp_path, size=size, seed=5)
    head, n, stream = stream_examples(task, split, "prepared", tmp_path, size=size, seed=5)
    examples = list(stream)
    assert examples == loaded.examples and n == len(examples) == (size or len(examples)) and head.labels == loaded.labels


RECORD = st.fixed_dictionaries({"id": st.text(max_size=3), "answers": st.fixed_dictionaries(
    {"text": st.lists(st.text(max_size=4), max_size=2), "answer_start": st.lists(st.integers(0, 99), max_size=2)})})


@settings(max_examples=40, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=12), st.data(), st.integers(1, 5))
def test_arrow_records_read_in_chunks_are_the_rows_one_at_a_time(records, data, chunk):
    ds = datasets.Dataset.from_list(records)
    rows = data.draw(st.none() | st.lists(st.integers(0, len(records) - 1), unique=True).map(sorted))
    expected = [(i, ds[i]) for i in (range(len(ds)) if rows is None else rows)]
    assert list(iter_records(ds, rows, chunk)) == expected
    assert list(iter_records(ds.to_list(), rows, chunk)) == expected  # a plain list: the same rows


def _plain(features):
    return [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.items()} for f in features]


@pytest.mark.parametrize("task,max_length", [("sst2", 32), ("squad", 96), ("pubmed", 256)])
def test_chunked_compact_features_equal_whole_list_features(task, max_length, tok):
    examples = load_examples(task, "eval", "local", DATA, size=7, seed=0).examples
    kind = kind_module(get_task(task).kind)
    whole = kind.featurize(examples, tok, max_length, k=2, stride=32)
    streamed = featurize_stream(kind, iter(examples), tok, max_length, chunk=3, k=2, stride=32)
    assert _plain(streamed) == whole  # example_index offset per chunk, values unchanged
    assert streamed[0]["input_ids"].dtype == np.int32
    for key, pad in kind.INPUTS.items():
        if key in whole[0]:
            a, b = collate(whole, kind.INPUTS, tok.pad_token_id)[key], collate(streamed, kind.INPUTS, tok.pad_token_id)[key]
            assert a.dtype == b.dtype and torch.equal(a, b), key


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 30000), min_size=0, max_size=9), min_size=1, max_size=5), st.booleans())
def test_collate_pads_lists_and_arrays_alike(rows, floats):
    pad = -1.0 if floats else 0
    values = [[float(x) for x in r] if floats else r for r in rows]
    a = collate([{"x": v} for v in values], {"x": pad})["x"]
    b = collate([{"x": compact(v)} for v in values], {"x": pad})["x"]
    width = max(len(r) for r in rows)
    assert a.shape == (len(rows), width) and torch.equal(a, b)
    assert a.dtype == (torch.float32 if floats else torch.int64)
    for i, r in enumerate(values):
        assert a[i, : len(r)].tolist() == r and all(x == pad for x in a[i, len(r):].tolist())


def test_compact_leaves_scalars_and_offsets_alone():
    assert compact(3) == 3 and compact([]) == [] and compact([None, (0, 1)]) == [None, (0, 1)]
    assert compact([1, 2]).dtype == np.int32 and compact([0.5]).dtype == np.float32


def test_training_data_counts_and_origin(tok):
    cfg = TrainConfig(task="cuad", source="local", data_dir=DATA, train_size=30)
    split, n, features = training_data(cfg, tok, 64)
    assert n == 30 and len(features) == 30 and split.origin.endswith("seed 0)") and len(split.labels) == 29
