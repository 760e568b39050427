"""The decoding bench's defaults, in one place (CLI, workflow schema test and analysis import them). Torch-free."""

MODEL = "smollm2"
PROBES = ("passkey", "multikey", "vt", "qa")
METHODS = ("streaming_llm", "h2o", "tova", "snapkv", "knorm", "random")  # = decoding.scores.SCORES (test)
LEARNED = "learned"  # issue 19: the trained gates' score (decoding.learned); needs --gates
LABELS = {"full": "full cache", "streaming_llm": "StreamingLLM", "h2o": "H2O", "tova": "TOVA", "snapkv": "SnapKV",
          "knorm": "Knorm", "random": "random", LEARNED: "learned (ours)"}
COMPRESSIONS = (0.5, 0.75)  # the core grid here; 0.25 … 0.875 in config/paper.yaml
SINKS = 4
WINDOW = 16
COST_LENGTHS = (1024, 2048, 4096, 8192)
SQUAD_FILE = "../shared/data/squad/validation.jsonl.gz"
DOCUMENT_SOURCES = ("arxiv", "cuad")  # streaming perplexity's documents (= decoding.perplexity.SOURCES)
PERPLEXITY = {"sources": list(DOCUMENT_SOURCES), "length": 1024, "documents": 8, "chunk": 32}  # streaming perplexity


def budget_for(tokens: int, compression: float, floor: int) -> int:
    """Entries kept at `compression` (the fraction removed, kvpress's convention): int(T (1 − c)), at least `floor`."""
    if not 0 < compression < 1:
        raise ValueError(f"compression must be in (0, 1), got {compression}")
    return max(floor, int(tokens * (1 - compression)))
