"""Is a retention run's end-of-trace budget gap its gates or its last batches? The final weights' expected kept
fraction (train mode, as the trace measures it) on the batches of the trace's last 10 % of steps — the same examples
in the same order — and on every batch of the last epoch (each training example once).

If the final weights give the trace's gap on the same last batches but not over the whole epoch, the gap is those
batches' composition, not where the gates stand. Reads a finished run folder; prints one TSV row per run.
    python scripts/kept_by_batch.py RUN_DIR... [--tail 0.1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from adaptive_retention.checkpoint import read_run
from adaptive_retention.config import TrainConfig
from adaptive_retention.io import TRACE_FILE, read_trace
from adaptive_retention.modeling import info_of
from adaptive_retention.train import _batch, _build


@torch.no_grad()
def kept_by_batch(run_dir: Path, tail: float) -> dict:
    record = read_run(run_dir / "model")
    run = _build(TrainConfig.from_dict(record["train_config"]))
    run.model.load_state_dict(load_file(str(run_dir / "model" / "model.safetensors")))
    run.model.train()  # dropout as in training; seeded by _build
    last_epoch = (run.total - 1) // run.steps_per_epoch
    steps = range(last_epoch * run.steps_per_epoch, run.total)
    kept = torch.stack([info_of(run.model(**_batch(run, s))).expected_kept.float().mean() for s in steps])  # (steps,)
    trace = read_trace(run_dir / TRACE_FILE)
    n_tail = max(1, int(len(trace) * tail))
    target = float(trace.filter(like="target_").iloc[-1, 0])
    return {"run": str(run_dir), "target": target, "trace_tail_gap": trace.filter(like="kept_").tail(n_tail).mean(axis=1).mean() - target,
            "final_weights_tail_gap": kept[-n_tail:].mean().item() - target,
            "final_weights_epoch_gap": kept.mean().item() - target, "epoch_batches": len(kept)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--tail", type=float, default=0.1, help="the trace's end window, a fraction of its steps")
    args = ap.parse_args(argv)
    for i, run in enumerate(args.runs):  # a row as each run is scored
        row = kept_by_batch(run, args.tail)
        if i == 0:
            print("\t".join(row))
        print("\t".join(f"{v:+.4f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
