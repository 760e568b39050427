import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, DistilBertConfig, LongformerConfig, RobertaConfig

from adaptive_retention.backbones import resolve_model_path

# Modules whose tests run Snakemake for real in the repository (its .snakemake/, resources/tiny-bert, results/): under
# `make test` (pytest -n 2 --dist loadgroup) they run one after another in one worker, every other test beside them.
RUN_SNAKEMAKE_HERE = ("test_workflow.py", "test_slurm.py")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (pytest < 9.2: pytest-xdist issue #1386)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in RUN_SNAKEMAKE_HERE:
            item.add_marker(pytest.mark.xdist_group("snakemake-in-the-repository"))
    items.sort(key=lambda item: item.path.name not in RUN_SNAKEMAKE_HERE)  # the longest unit first: the other worker fills in


TINY = dict(vocab_size=120, hidden_size=32, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)


def tiny_config(family: str, layers: int = 4, attn: str = "sdpa"):
    if family == "bert":
        return BertConfig(num_hidden_layers=layers, attn_implementation=attn, **TINY)
    if family == "roberta":
        return RobertaConfig(num_hidden_layers=layers, attn_implementation=attn, pad_token_id=1, bos_token_id=0, eos_token_id=2, **TINY)
    if family == "distilbert":
        return DistilBertConfig(vocab_size=120, dim=32, n_heads=4, hidden_dim=64, n_layers=layers, max_position_embeddings=64, attn_implementation=attn)
    if family == "longformer":  # sliding window of 8: lengths are padded to multiples of 8
        return LongformerConfig(num_hidden_layers=layers, attention_window=8, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                **TINY)
    raise KeyError(family)


def batch_with_lengths(lengths, vocab=120, cls=101 % 120, sep=102 % 120, pad=0, seed=0):
    """Right-padded ids [CLS] x… [SEP] with the given total lengths (≥ 2), and the attention mask."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.full((len(lengths), T), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(5, 100, (n,), generator=g)  # content ids stay clear of 101, 102
        ids[b, 0], ids[b, n - 1] = cls, sep
        mask[b, :n] = 1
    return ids, mask


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT with the MiniLM vocabulary, as a model folder."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class LocalHub:
    """The local Hub of the tests (tests/hub): replica repos served on 127.0.0.1 by a server process this
    fixture started (its PID is kept; only that process is stopped)."""

    def __init__(self, root, sizes, process, port, cache):
        self.root, self.sizes, self.process, self.port, self.cache = root, sizes, process, port, cache
        self.url = f"http://127.0.0.1:{port}"

    def env(self, **extra) -> dict:
        """The environment of a process that reaches this Hub as if it were huggingface.co (and github.com for
        release archives), with its own caches; the offline switches removed."""
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
        env.update({"HF_ENDPOINT": self.url, "ADAPTIVE_RETENTION_ARCHIVE_ENDPOINT": self.url, "HF_HOME": str(self.cache / "hf"),
                    "ADAPTIVE_RETENTION_CACHE": str(self.cache / "ar"), "HF_HUB_DISABLE_TELEMETRY": "1", **extra})
        return env


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    import subprocess
    import sys
    import time
    from pathlib import Path

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here / "hub"))
    import replicas

    base = tmp_path_factory.mktemp("local-hub")
    sizes = replicas.build(base / "repos", here.parents[0].parent / "shared" / "data")
    port_file = base / "port"
    process = subprocess.Popen([sys.executable, str(here / "hub" / "server.py"), str(base / "repos"), "--port-file", str(port_file)],
                               stderr=open(base / "server.log", "w"))
    try:
        for _ in range(200):
            if port_file.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        assert port_file.exists(), f"local hub did not start: {(base / 'server.log').read_text()}"
        yield LocalHub(base / "repos", sizes, process, int(port_file.read_text()), base / "cache")
    finally:
        process.terminate()
        process.wait(timeout=10)
