"""Which examples form each optimiser step's batch in one epoch (`TrainConfig.batching`).

`random`: consecutive slices of a seeded permutation (the batches every earlier run used). `by_length`: the same
permutation cut into groups of `GROUP` batches; each group sorted by length and cut into consecutive batches, the one
short batch (if any) placed where it pads least; then the batches shuffled. Every example still appears once per epoch,
but a batch pads to a length close to its members' (the `group_by_length` of Hugging Face's Trainer). No partition of a
group into batches of those sizes pads less (tests/test_batching.py checks it against brute force), so `by_length`
never pads more than `random`.
"""

import torch

GROUP = 50  # batches per length-sorted group: large enough to find similar lengths, small enough to stay random


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, batching: str) -> list[list[int]]:
    """Example indices of each batch of epoch `epoch`, in step order; seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if batching == "random":
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if batching != "by_length":
        raise ValueError(f"unknown batching {batching!r}; allowed: random, by_length")
    span = GROUP * batch_size
    batches = []
    for start in range(0, len(order), span):
        group = sorted(order[start:start + span], key=lambda i: lengths[i])  # stable: ties keep the permutation's order
        batches += _cut(group, [lengths[i] for i in group], batch_size)
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def _cut(group: list[int], sorted_lengths: list[int], batch_size: int) -> list[list[int]]:
    """Cut a group sorted by length into consecutive batches with the least padding: full batches, and the one short
    batch (only the epoch's last group has one) wherever in the order it pads least."""
    full, short = divmod(len(group), batch_size)
    candidates = [[batch_size] * p + [short] * (short > 0) + [batch_size] * (full - p) for p in range(full + 1 if short else 1)]

    def bounds(sizes):
        ends = [sum(sizes[:j + 1]) for j in range(len(sizes))]
        return list(zip([0] + ends[:-1], ends))

    def padded(sizes):  # Σ size × the batch's longest (its last, the group being sorted)
        return sum((b - a) * sorted_lengths[b - 1] for a, b in bounds(sizes))

    best = min(candidates, key=padded)  # the first of equals: deterministic
    return [group[a:b] for a, b in bounds(best)]
