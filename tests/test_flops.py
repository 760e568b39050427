"""The analytic FLOP count agrees with torch.utils.flop_counter on tiny encoders."""

import pytest
import torch
from transformers import AutoModel

from adaptive_retention.flops import encoder_flops, measured_flops
from adaptive_retention.config import RetentionConfig
from adaptive_retention.modeling import apply_retention

from conftest import batch_with_lengths, tiny_config


@pytest.mark.parametrize("family", ["bert", "distilbert"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("ratio,schedule,start", [(None, None, None), (1.0, "constant", 1), (0.5, "constant", 1), (0.3, "linear", 0), (0.3, "geometric", 2)])
def test_analytic_equals_counted(family, attn, ratio, schedule, start):
    cfg = tiny_config(family, attn=attn)
    model = AutoModel.from_config(cfg).eval()
    T = 40
    ids, mask = batch_with_lengths([T])
    if ratio is not None:
        apply_retention(model, RetentionConfig(ratio=ratio, schedule=schedule, start_layer=start), [101 % 120, 102 % 120])
    with torch.no_grad():
        counted = measured_flops(model, input_ids=ids, attention_mask=mask)
    d, f = cfg.hidden_size, cfg.intermediate_size if family != "distilbert" else cfg.hidden_dim
    analytic = encoder_flops(T, 4, d, f, scorer=None) if ratio is None else encoder_flops(T, 4, d, f, ratio, schedule, start)
    if family == "bert":
        analytic += 2 * d * d  # BertModel's pooler: one d×d matmul on [CLS]
    assert counted == pytest.approx(analytic, rel=0.05)
    assert counted == analytic  # matrix multiplies only: the count is exact
