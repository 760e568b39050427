"""train.batching: each example once per epoch, `random` = the permutation every earlier run used, `by_length` never
pads more than `random` (same groups, sorted), and the switch reaches the training loop."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_retention import train as train_module
from adaptive_retention.batching import GROUP, epoch_batches
from adaptive_retention.train import train

from test_train_evaluate import _cfg

LENGTHS = st.lists(st.integers(1, 512), min_size=1, max_size=400)


def _padded(batches, lengths):
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


@settings(max_examples=60, deadline=None)
@given(LENGTHS, st.integers(1, 9), st.integers(0, 10**6), st.integers(0, 5), st.sampled_from(["random", "by_length"]))
def test_every_example_once_per_epoch_in_full_batches(lengths, batch_size, seed, epoch, batching):
    batches = epoch_batches(lengths, batch_size, seed, epoch, batching)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert len(batches) == -(-len(lengths) // batch_size)  # ceil: the steps per epoch train counts
    assert sum(len(b) < batch_size for b in batches) <= 1
    assert batches == epoch_batches(lengths, batch_size, seed, epoch, batching)  # seeded


@settings(max_examples=60, deadline=None)
@given(LENGTHS, st.integers(1, 9), st.integers(0, 10**6), st.integers(0, 5))
def test_random_is_the_earlier_runs_permutation_and_by_length_pads_no_more(lengths, batch_size, seed, epoch):
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed * 100003 + epoch)).tolist()
    random = epoch_batches(lengths, batch_size, seed, epoch, "random")
    assert random == [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    assert _padded(epoch_batches(lengths, batch_size, seed, epoch, "by_length"), lengths) <= _padded(random, lengths)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=7), st.integers(1, 3))
def test_by_length_pads_least_of_all_partitions_of_a_group(lengths, batch_size):
    """Brute force over every order of a small group: no cut into batches of these sizes pads less."""
    from itertools import permutations

    sizes = [len(b) for b in epoch_batches(lengths, batch_size, 0, 0, "random")]
    cuts = [sum(sizes[:j]) for j in range(len(sizes) + 1)]
    best = min(_padded([p[a:b] for a, b in zip(cuts, cuts[1:])], lengths) for p in permutations(range(len(lengths))))
    assert _padded(epoch_batches(lengths, batch_size, 0, 0, "by_length"), lengths) == best


def test_by_length_batches_are_close_in_length_yet_shuffled():
    lengths = [8 + (i * 37) % 120 for i in range(GROUP * 4 * 16)]
    batches = epoch_batches(lengths, 16, 0, 0, "by_length")
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert max(spread) <= 8  # 800 examples per group over 120 lengths: ≈ 7 per length
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest != sorted(longest, reverse=True)  # batch order is shuffled, not longest first
    assert _padded(batches, lengths) < 0.6 * _padded(epoch_batches(lengths, 16, 0, 0, "random"), lengths)


def test_the_switch_reaches_training(tiny_model, tmp_path, monkeypatch):
    widths = {}
    real = train_module.collate

    def spy(features, *args):
        widths.setdefault(mode, []).append((len(features), max(len(f["input_ids"]) for f in features)))
        return real(features, *args)

    monkeypatch.setattr(train_module, "collate", spy)
    for mode in ("random", "by_length"):
        train(_cfg(tiny_model, batching=mode, train_size=64, retention=None), tmp_path / mode, progress=False)
    padded = {m: sum(n * w for n, w in v) for m, v in widths.items()}
    assert [n for n, _ in widths["random"]] == [n for n, _ in widths["by_length"]] == [8] * 8
    assert padded["by_length"] < 0.85 * padded["random"]
