"""Paired tests and seed intervals (analysis/paired.py) against closed forms and invariants."""

import itertools
import json
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis import paired


def test_one_seed_is_mcnemars_exact_binomial_on_discordant_pairs():
    a = np.array([100] * 10 + [0] * 2 + [100] * 30 + [0] * 5)  # 10 only-a, 2 only-b, 30 both, 5 neither
    b = np.array([0] * 10 + [100] * 2 + [100] * 30 + [0] * 5)
    want = 2 * sum(comb(12, k) for k in range(10, 13)) / 2 ** 12
    assert paired.sign_flip(a, b) == pytest.approx(want) and paired.sign_flip(a, a) == 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 11), st.integers(0, 10**6))
def test_sign_flip_is_every_sign_pattern_of_the_samples_differences(seeds_a, seeds_b, n, seed):
    """Against brute force: each sample's seed-mean difference, every one of the 2^n sign patterns equally likely."""
    rng = np.random.default_rng(seed)
    a, b = rng.random((seeds_a, n)) < 0.6, rng.random((seeds_b, n)) < 0.4
    diff = a.mean(0) - b.mean(0)
    sums = np.abs(np.array(list(itertools.product((1, -1), repeat=n))) @ diff)
    assert paired.sign_flip(a, b) == pytest.approx((sums >= abs(diff.sum()) - 1e-9).mean())
    assert paired.sign_flip(a, b) == pytest.approx(paired.sign_flip(b, a))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 4), st.integers(20, 200), st.integers(0, 10**6))
def test_a_seed_repeated_is_one_seeds_evidence(copies, n, seed):
    """The samples are the unit: the same outcomes read `copies` times give the same p, where pooling the (seed,
    sample) pairs into one McNemar test (the convention before session 23) makes them look `copies` times as many."""
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) < 0.7, rng.random(n) < 0.5
    assert paired.sign_flip(np.tile(a, (copies, 1)), np.tile(b, (copies, 1))) == pytest.approx(paired.sign_flip(a, b))
    assert paired.sign_flip(np.tile(a, (copies, 1)), b) == pytest.approx(paired.sign_flip(a, b))
    with pytest.raises(ValueError, match="different examples"):
        paired.sign_flip(a, b[1:])


def test_seed_interval_is_the_t_interval():
    mean, half = paired.seed_interval([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3) and half == pytest.approx(stats.t.ppf(0.975, 2) * np.std([1, 2, 4], ddof=1) / np.sqrt(3))
    assert np.isnan(paired.seed_interval([3.0])[1])


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(5, 60), st.integers(0, 10**6))
def test_bootstrap_is_antisymmetric_and_exact_for_a_constant_gap(seeds, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(seeds, n)), rng.normal(size=(seeds, n))
    low, high, p = paired.paired_bootstrap(a, b, n=500)
    low2, high2, p2 = paired.paired_bootstrap(b, a, n=500)
    assert (low, high) == pytest.approx((-high2, -low2)) and p == pytest.approx(p2)
    assert low <= (a - b).mean() <= high or p > 0.05
    assert paired.paired_bootstrap(a + 0.5, a, n=200) == pytest.approx((0.5, 0.5, 0.0))
    assert paired.paired_bootstrap(a, a, n=200)[2] == 1.0


def _result(tmp_path, name, method, study, ratio, seed, scores, ids=None):
    r = {"task": "sst2", "method": method, "study": study, "ratio": ratio, "seed": seed,
         "per_example": {"id": ids or list(range(len(scores))), "accuracy": scores}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(r))
    return str(path)


def test_compare_pairs_systems_by_seed_and_example(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for s in range(3):
        truth = rng.random(200) < 0.8
        files.append(_result(tmp_path, f"full{s}", "full", None, None, s, list(100.0 * truth)))
        ours = truth & (rng.random(200) < 0.97)  # loses ~3 % of what the full model gets right
        worse = truth & (rng.random(200) < 0.7)
        files.append(_result(tmp_path, f"ours{s}", "learned", "ours", 0.3, s, list(100.0 * ours)))
        files.append(_result(tmp_path, f"hh{s}", "heavy_hitter", None, 0.3, s, list(100.0 * worse)))
    longer = [_result(tmp_path, f"long{s}", "full", "long", None, s, [100.0] * 200) for s in range(3)]  # trained longer
    table = paired.compare(paired.load(files + longer, "accuracy"), "learned (ours)")
    assert sorted(table.ratio) == [0.3] * 3  # the longer-trained full model is compared at the budget too
    table = table.set_index("system")
    assert set(table.index) == {"learned (ours)", "heavy_hitter", "full (long)"}
    assert table.loc["full (long)", "diff"] < 0 and table.loc["full (long)", "of_full_pct"] > 100
    hh = table.loc["heavy_hitter"]
    assert hh.test == paired.TEST and hh.p_value < 1e-6 and hh["diff"] > 0 and hh.diff_low > 0 and hh.paired_seeds == 3
    assert 94 < table.loc["learned (ours)", "of_full_pct"] < 100 and table.loc["learned (ours)", "n_seeds"] == 3
    other = _result(tmp_path, "shuffled", "random", None, 0.3, 0, [0.0] * 200, ids=list(range(1, 201)))
    with pytest.raises(SystemExit, match="not on the same examples"):
        paired.compare(paired.load(files + [other], "accuracy"), "learned (ours)")


def test_a_result_without_per_example_scores_is_named(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"task": "sst2", "method": "full", "ratio": None, "seed": 0, "metrics": {}}))
    with pytest.raises(SystemExit, match="old.json has no per-example 'accuracy' scores"):
        paired.load([str(path)], "accuracy")
    path.write_text(json.dumps({"task": "cuad", "method": "full", "ratio": None, "seed": 0, "per_example": {"id": [0]}}))
    with pytest.raises(SystemExit, match="no per-example 'f1_micro' scores"):  # the task's headline metric by default
        paired.load([str(path)])
