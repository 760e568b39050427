"""Bad input: a ValueError that names the bad value and the allowed ones."""

import pytest
from transformers import AutoModel, GPT2Config, GPT2Model

from adaptive_retention.config import RetentionConfig
from adaptive_retention.modeling import apply_retention

from conftest import tiny_config


@pytest.mark.parametrize("kwargs,match", [
    (dict(ratio=0.0), r"ratio must lie in \(0, 1\], got 0.0"),
    (dict(ratio=1.2), r"ratio must lie in \(0, 1\], got 1.2"),
    (dict(ratio=float("nan")), "ratio must be a finite number, got nan"),
    (dict(scorer="lstm"), r"unknown scorer 'lstm'; allowed: \['mlp', 'recurrent'\]"),
    (dict(schedule="cosine"), r"unknown schedule 'cosine'; allowed: \['constant', 'linear', 'geometric'\]"),
    (dict(placement="middle"), r"unknown placement 'middle'; allowed: \['layerwise', 'final'\]"),
    (dict(restore="zeros"), "unknown restore 'zeros'"),
    (dict(soft_mask="attention"), "unknown soft_mask 'attention'"),
    (dict(budget_prob="l1"), "unknown budget_prob 'l1'"),
    (dict(start_layer=-1), "start_layer must be ≥ 0, got -1"),
    (dict(start_layer=1.5), "start_layer must be an integer, got 1.5"),
    (dict(gather="yes"), "gather must be true or false"),
    (dict(beta=-1.0), "beta must be > 0"),
])
def test_bad_config_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RetentionConfig(**kwargs)


def test_unknown_config_key():
    with pytest.raises(ValueError, match=r"unknown retention config key\(s\) \['ratoi'\]"):
        RetentionConfig.from_dict({"ratoi": 0.5})
    assert RetentionConfig.from_dict({"ratio": 0.3}).ratio == 0.3


def test_start_layer_beyond_depth():
    with pytest.raises(ValueError, match=r"start_layer must lie in \[0, 3\] for this 4-layer model, got 4"):
        apply_retention(AutoModel.from_config(tiny_config("bert")), RetentionConfig(start_layer=4))


def test_unsupported_family():
    gpt2 = GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(ValueError, match=r"unsupported model family 'gpt2'; supported: \['bert', 'distilbert', 'longformer', 'roberta'\]"):
        apply_retention(gpt2, RetentionConfig())


def test_applied_twice():
    model = apply_retention(AutoModel.from_config(tiny_config("bert")), RetentionConfig())
    with pytest.raises(ValueError, match="already has retention"):
        apply_retention(model, RetentionConfig())
