"""scripts/kept_by_batch.py: it replays a run's own batches — on a run whose weights cannot move (learning rates ≈ 0)
and without dropout, the final weights' kept fraction on the trace's last batches is the trace's."""

import importlib.util

import pytest
from transformers import AutoTokenizer, BertConfig, BertModel

from adaptive_retention.config import TrainConfig
from adaptive_retention.train import train

from test_data import SHARED


def test_the_final_weights_replay_the_traces_last_batches(tiny_model, tmp_path):
    still = tmp_path / "still_bert"  # the tiny model without dropout: the trace's kept then depends on the weights only
    BertModel.from_pretrained(tiny_model, config=BertConfig.from_pretrained(
        tiny_model, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).save_pretrained(still)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(still)
    cfg = TrainConfig.from_dict(dict(task="sst2", model=str(still), data_dir=str(SHARED), train_size=96, batch_size=8,
                                     epochs=2, lr=1e-12, scorer_lr=1e-12, retention={"ratio": 0.5}, budget_warmup=0.2))
    train(cfg, tmp_path / "run", progress=False)
    spec = importlib.util.spec_from_file_location("kept_by_batch", "scripts/kept_by_batch.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    row = script.kept_by_batch(tmp_path / "run", tail=0.25)  # 24 steps: the last 6
    assert row["epoch_batches"] == 12 and row["target"] == pytest.approx(0.5)
    assert row["final_weights_tail_gap"] == pytest.approx(row["trace_tail_gap"], abs=1e-5)
    assert row["final_weights_epoch_gap"] != pytest.approx(row["final_weights_tail_gap"], abs=1e-6)  # other batches
