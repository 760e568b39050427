"""Long-context probes for the KV-cache bench, generated locally and seeded (issue 18).

Each sample is a context (compressed by the cache), then a question asked after compression (query-agnostic, as in
kvpress) ending in an answer prefix, and the gold answers. A sample is right when its greedy answer contains every
gold answer (`correct`). Formats follow their sources: passkey — Landmark Attention (Mohtashami & Jaggi, 2023);
multikey needle and variable tracking — RULER (Hsieh et al., 2024: niah_multikey_1, vt with one chain of 4 hops);
QA — a SQuAD v1.1 paragraph among paragraphs of other articles, its question after them.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)  # where the needle sits in the context; samples cycle through them
NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
VT_HOPS = 4  # RULER's vt: one chain of 4 hops (5 variables)
# The vt answer prefix ends with " VAR", the assignments' own word: after RULER's bare "they are:", SmolLM2-135M
# continued the haystack ("The grass is green...") in 20 / 20 samples at 1, 2 and 4 hops with the full cache; with
# " VAR" it names variables (2 / 10 right at 4 hops). Chosen on probe seed 7, never the bench's seed 0.
VT_PRIMING = " VAR"
KEY_WORDS = ("apple", "river", "candle", "violin", "harbor", "meadow", "lantern", "falcon", "pepper", "glacier",
             "saddle", "compass", "orchid", "anchor", "thunder", "marble", "velvet", "cactus", "pillow", "beacon",
             "walnut", "quartz", "ember", "tulip", "canyon", "feather", "biscuit", "copper", "lagoon", "meteor")


@dataclass(frozen=True)
class Sample:
    probe: str
    id: str
    context: str
    question: str  # asked after the context is compressed
    answer_prefix: str  # the start of the model's turn, ending where the answer begins
    answers: tuple[str, ...]
    depth: float
    max_new_tokens: int
    meta: dict = field(default_factory=dict)


def _normalise(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, articles or extra spaces."""
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def correct(sample: Sample, answer: str) -> bool:
    """Every gold answer appears in the first line of the model's answer (QA: any one of them, normalised)."""
    first = answer.strip().split("\n")[0]
    if sample.probe == "qa":
        return any(_normalise(gold) in _normalise(first) for gold in sample.answers if _normalise(gold))
    return all(gold in first for gold in sample.answers)


def _fill(tokenizer, length: int, pieces: list[str], depths: list[float], head: str, noise: str = NOISE) -> str:
    """`head`, then noise repeated to about `length` tokens with each piece inserted at its depth (0: first)."""
    count = lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)
    room = length - count(head) - sum(count(p) for p in pieces)
    repeats = max(1, room // count(noise))
    slots = [[] for _ in range(repeats + 1)]
    for piece, depth in zip(pieces, depths):
        slots[round(depth * repeats)].append(piece)
    body = "".join("".join(slot) + (noise if i < repeats else "") for i, slot in enumerate(slots))
    return head + body


def passkey(tokenizer, length: int, n: int, seed: int) -> list[Sample]:
    rng = random.Random(f"passkey-{length}-{seed}")
    head = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
            "I will quiz you about the important information there.\n")
    samples = []
    for i in range(n):
        key, depth = str(rng.randint(10000, 99999)), DEPTHS[i % len(DEPTHS)]
        needle = f"The pass key is {key}. Remember it. {key} is the pass key. "
        samples.append(Sample("passkey", f"passkey-{length}-{i}", _fill(tokenizer, length, [needle], [depth], head),
                              "What is the pass key?", "The pass key is", (key,), depth, 8))
    return samples


def multikey(tokenizer, length: int, n: int, seed: int, needles: int = 4) -> list[Sample]:
    rng = random.Random(f"multikey-{length}-{seed}")
    head = ("Some special magic numbers are hidden within the following text. Make sure to memorize it. "
            "I will quiz you about the numbers afterwards.\n")
    samples = []
    for i in range(n):
        words = rng.sample(KEY_WORDS, needles)
        values = [str(rng.randint(1000000, 9999999)) for _ in words]
        depths = sorted(rng.random() for _ in words)
        asked = i % needles
        pieces = [f"One of the special magic numbers for {w} is: {v}. " for w, v in zip(words, values)]
        question = f"What is the special magic number for {words[asked]} mentioned in the provided text?"
        prefix = f"The special magic number for {words[asked]} mentioned in the provided text is"
        samples.append(Sample("multikey", f"multikey-{length}-{i}", _fill(tokenizer, length, pieces, depths, head),
                              question, prefix, (values[asked],), depths[asked], 12))
    return samples


def variable_tracking(tokenizer, length: int, n: int, seed: int, hops: int = VT_HOPS) -> list[Sample]:
    rng = random.Random(f"vt-{length}-{seed}")
    head = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
    samples = []
    for i in range(n):
        names = ["".join(rng.choices(string.ascii_uppercase, k=5)) for _ in range(hops + 1)]
        value = str(rng.randint(10000, 99999))
        pieces = [f"VAR {names[0]} = {value}. "] + [f"VAR {b} = {a}. " for a, b in zip(names, names[1:])]
        depths = sorted(rng.random() for _ in pieces)
        question = f"Question: Find all variables that are assigned the value {value} in the text above."
        prefix = (f"Answer: According to the chain(s) of variable assignment in the text above, {hops + 1} variables "
                  f"are assigned the value {value}, they are:" + VT_PRIMING)
        samples.append(Sample("vt", f"vt-{length}-{i}", _fill(tokenizer, length, pieces, depths, head), question,
                              prefix, tuple(names), depths[0], 8 * (hops + 1)))
    return samples


def squad_qa(tokenizer, length: int, n: int, seed: int, squad_file: str | Path) -> list[Sample]:
    """The asked paragraph at a depth among other articles' paragraphs, about `length` tokens in all."""
    from ..data import read_jsonl

    records = read_jsonl(Path(squad_file), ("title", "context", "question", "answers"))
    rng = random.Random(f"qa-{length}-{seed}")
    asked = rng.sample(records, n)
    paragraphs = sorted({(r["title"], r["context"]) for r in records})
    count = lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)
    head = "Read the following passages.\n\n"
    samples = []
    for i, record in enumerate(asked):
        depth = DEPTHS[i % len(DEPTHS)]
        others = [p for t, p in rng.sample(paragraphs, 40) if t != record["title"]]
        room = length - count(head) - count(record["context"])
        chosen = []
        for p in others:
            if (room := room - count(p + "\n\n")) < 0:
                break
            chosen.append(p)
        chosen.insert(round(depth * len(chosen)), record["context"])
        question = f"Answer the question from the passages above.\nQuestion: {record['question']}"
        samples.append(Sample("qa", f"qa-{length}-{i}", head + "\n\n".join(chosen), question, "Answer:",
                              tuple(record["answers"]["text"]), depth, 16, {"squad_id": record["id"]}))
    return samples


GENERATORS = {"passkey": passkey, "multikey": multikey, "vt": variable_tracking, "qa": squad_qa}  # = defaults.PROBES


def prompt_parts(sample: Sample, tokenizer) -> tuple[str, str]:
    """(what is compressed, what follows it): the context opens the user's turn of the model's chat template, the
    question closes it and the assistant's turn starts with the answer prefix. Without a template: plain text."""
    if getattr(tokenizer, "chat_template", None):
        marker = "\x00"
        chat = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False,
                                             add_generation_prompt=True)
        opening, closing = chat.split(marker)
        return opening + sample.context, "\n" + sample.question + closing + sample.answer_prefix
    return sample.context, "\n" + sample.question + "\n" + sample.answer_prefix


def make_probe(name: str, tokenizer, length: int, n: int, seed: int, squad_file: str | Path | None = None):
    if name not in GENERATORS:
        raise ValueError(f"unknown probe {name!r}; choose from {sorted(GENERATORS)}")
    if name == "qa":
        if squad_file is None:
            raise ValueError("probe 'qa' needs a SQuAD file (decoding.squad_file)")
        return squad_qa(tokenizer, length, n, seed, squad_file)
    return GENERATORS[name](tokenizer, length, n, seed)
