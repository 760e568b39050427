"""Training and evaluation on a tiny random BERT with the real tokenizer and real SST-2 rows:
determinism, resume ≡ uninterrupted, the NaN guard, atomic outputs, evaluation JSONs, bad input."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adaptive_retention.checkpoint import load_checkpoint
from adaptive_retention.cli import main
from adaptive_retention.config import EvalConfig, TrainConfig
from adaptive_retention.evaluate import evaluate
from adaptive_retention.gates import MLPScorer, RecurrentScorer
from adaptive_retention.modeling import retention_of
from adaptive_retention.tasks import classification
from adaptive_retention.train import TrainingError, train

from test_data import SHARED


def _cfg(model, **kw):
    base = dict(task="sst2", model=model, data_dir=str(SHARED), train_size=48, batch_size=8, epochs=1, lr=1e-3,
                retention={"ratio": 0.5}, checkpoint_every=2, budget_warmup=0.2, eta=0.1)
    return TrainConfig.from_dict({**base, **kw})


def _eval(checkpoint, methods, ratios, out, **kw):
    plan = methods if isinstance(methods, dict) else {m: list(ratios) for m in methods}
    progress = kw.pop("progress", False)
    return evaluate(checkpoint, EvalConfig(plan=plan, data_dir=str(SHARED), **kw), out, progress=progress)


def _weights(out):
    return load_file(str(Path(out) / "model" / "model.safetensors"))


def _trace(out):
    lines = (Path(out) / "trace.tsv").read_text().splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def _record_weights_after_each_step(monkeypatch) -> list[dict]:
    """A list that fills with every parameter's value after each training step (a spy on `_average_weights`)."""
    import adaptive_retention.train as train_module
    after_step, real = [], train_module._average_weights

    def recording(run, step):
        after_step.append({k: v.detach().clone() for k, v in run.model.named_parameters()})
        real(run, step)

    monkeypatch.setattr(train_module, "_average_weights", recording)
    return after_step


def test_same_seed_same_result_and_trace_columns(tiny_model, tmp_path):
    a = train(_cfg(tiny_model), tmp_path / "a", progress=False)
    b = train(_cfg(tiny_model), tmp_path / "b", progress=False)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["final_loss"] == b["final_loss"]
    header = (tmp_path / "a" / "trace.tsv").read_text().splitlines()[0].split("\t")
    assert {"step", "loss", "task_loss", "kept_1", "target_1", "lambda_1", "lr_backbone", "lr_scorers"} <= set(header)
    assert not (tmp_path / "a" / "resume.pt").exists()
    run = json.loads((tmp_path / "a" / "model" / "run.json").read_text())
    assert run["retention"]["ratio"] == 0.5 and run["controller"]["step_count"] == 6


def test_scorer_schedule_linear_decays_the_scorers_lr_with_the_backbones(tiny_model, tmp_path):
    """`constant` keeps the scorers at scorer_lr after warm-up; `linear` scales them by the backbone's own factor."""
    for schedule in ("constant", "linear"):
        train(_cfg(tiny_model, scorer_schedule=schedule, scorer_lr=2e-3), tmp_path / schedule, progress=False)
    constant, linear = _trace(tmp_path / "constant"), _trace(tmp_path / "linear")
    assert [float(r["lr_scorers"]) for r in constant] == [2e-3] * len(constant)
    factors = [float(r["lr_backbone"]) / 1e-3 for r in linear]
    assert factors == sorted(factors, reverse=True) and factors[-1] < factors[0]
    assert [float(r["lr_scorers"]) for r in linear] == pytest.approx([2e-3 * f for f in factors], rel=1e-5)
    assert [r["lr_backbone"] for r in linear] == [r["lr_backbone"] for r in constant]
    assert _weights(tmp_path / "constant").keys() == _weights(tmp_path / "linear").keys()
    assert any(not torch.equal(_weights(tmp_path / "constant")[k], _weights(tmp_path / "linear")[k])
               for k in _weights(tmp_path / "linear"))


def test_budget_filter_pulls_on_the_misses_moving_average(tiny_model, tmp_path):
    """`budget_filter` β: the first step is the unfiltered run's (nothing averaged yet), later steps differ, and the
    controller the run saves holds the moving average of the trace's misses (kept − target)."""
    for beta in (0.0, 0.9):
        train(_cfg(tiny_model, epochs=2, budget_quadratic=50, budget_filter=beta), tmp_path / str(beta), progress=False)
    plain, filtered = _trace(tmp_path / "0.0"), _trace(tmp_path / "0.9")
    assert plain[0] == filtered[0] and [r["kept_1"] for r in plain] != [r["kept_1"] for r in filtered]
    average = None
    for r in filtered:
        miss = float(r["kept_1"]) - float(r["target_1"])
        average = miss if average is None else 0.9 * average + 0.1 * miss
    controller = json.loads((tmp_path / "0.9" / "model" / "run.json").read_text())["controller"]
    assert controller["filter"] == 0.9 and controller["mean_miss"] == [pytest.approx(average, abs=1e-5)]


def test_weight_average_saves_the_last_epochs_mean_and_changes_nothing_else(tiny_model, tmp_path, monkeypatch):
    """`scorers`: the saved scorers are the mean of the scorers after each of the last epoch's steps (steps 7–12 of
    12), every other weight the last step's; `all`: every weight the last epoch's mean. Training itself (the trace) is
    the same as `none`'s."""
    after_step = _record_weights_after_each_step(monkeypatch)
    for average in ("none", "scorers", "all"):
        summary = train(_cfg(tiny_model, epochs=2, weight_average=average), tmp_path / average, progress=False)
        assert summary["steps_averaged"] == (0 if average == "none" else 6)
        assert (tmp_path / "none" / "trace.tsv").read_text() == (tmp_path / average / "trace.tsv").read_text()
    last = after_step[:12]
    scorer_names = {k for k in last[0] if any(k.endswith(n) for n, _ in retention_of(
        load_checkpoint(tmp_path / "none" / "model")[0]).named_parameters())}
    assert scorer_names and scorer_names < set(last[0])
    for average in ("none", "scorers", "all"):
        model = dict(load_checkpoint(tmp_path / average / "model")[0].named_parameters())
        for k, v in model.items():
            mean = torch.stack([s[k] for s in last[6:]]).mean(0)
            averaged = average == "all" or (average == "scorers" and k in scorer_names)
            assert torch.allclose(v, mean, atol=1e-6) if averaged else torch.equal(v, last[-1][k]), (average, k)
        assert any(not torch.allclose(model[k], last[-1][k]) for k in scorer_names) == (average != "none")


def _train_killed(cfg, out, monkeypatch):
    """Train until the process "dies" during step 5, after the checkpoint at step 4."""
    calls = {"n": 0}
    real_clip = torch.nn.utils.clip_grad_norm_

    def dying_clip(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_clip(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(torch.nn.utils, "clip_grad_norm_", dying_clip)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, out, progress=False)


def test_killed_run_resumes_to_the_same_end(tiny_model, tmp_path, monkeypatch):
    train(_cfg(tiny_model), tmp_path / "whole", progress=False)
    _train_killed(_cfg(tiny_model), tmp_path / "killed", monkeypatch)
    assert (tmp_path / "killed" / "resume.pt").exists() and not (tmp_path / "killed" / "model").exists()
    train(_cfg(tiny_model), tmp_path / "killed", progress=False)  # the same command again
    wa, wb = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "whole" / "trace.tsv").read_text() == (tmp_path / "killed" / "trace.tsv").read_text()
    for run in ("whole", "killed"):  # every step's wall time, those before the kill kept in resume.pt
        steps = [line.split("\t") for line in (tmp_path / run / "step_times.tsv").read_text().splitlines()[1:]]
        assert [int(s) for s, _ in steps] == list(range(1, len(steps) + 1)) == [int(line.split("\t")[0]) for line in
                                          (tmp_path / run / "trace.tsv").read_text().splitlines()[1:]]
        assert all(float(t) > 0 for _, t in steps)


def test_average_steps_sets_the_averaging_window(tiny_model, tmp_path, monkeypatch):
    """`average_steps: 3`: the saved scorers are the mean of the last 3 steps' (not the last epoch's 6)."""
    after_step = _record_weights_after_each_step(monkeypatch)
    summary = train(_cfg(tiny_model, epochs=2, weight_average="scorers", average_steps=3), tmp_path, progress=False)
    assert summary["steps_averaged"] == 3 and len(after_step) == 12
    model = load_checkpoint(tmp_path / "model")[0]
    scorers = dict(retention_of(model).named_parameters())
    assert scorers
    for name, p in model.named_parameters():
        if any(name.endswith(n) for n in scorers):
            assert torch.allclose(p, torch.stack([s[name] for s in after_step[9:]]).mean(0), atol=1e-6), name
            assert not torch.allclose(p, torch.stack([s[name] for s in after_step[6:]]).mean(0), atol=1e-6), name


@pytest.mark.parametrize("keys,match", [({"average_steps": 5}, "average_steps > 0 needs weight_average"),
                                        ({"budget_filter": 0.5}, "budget_filter > 0 needs budget_quadratic")])
def test_a_window_or_filter_with_nothing_to_act_on_is_refused(tiny_model, keys, match):
    with pytest.raises(ValueError, match=match):
        _cfg(tiny_model, **keys)


def test_a_killed_run_resumes_its_weight_average(tiny_model, tmp_path, monkeypatch):
    """The running mean of the weights (steps 1–4 of the last epoch, in resume.pt) survives a kill."""
    cfg = _cfg(tiny_model, weight_average="all")
    train(cfg, tmp_path / "whole", progress=False)
    _train_killed(cfg, tmp_path / "killed", monkeypatch)
    assert torch.load(tmp_path / "killed" / "resume.pt", weights_only=False)["weight_mean"]["count"] == 4
    train(cfg, tmp_path / "killed", progress=False)
    wa, wb = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_run_killed_before_a_new_training_key_resumes_if_the_key_is_at_its_default(tiny_model, tmp_path, monkeypatch):
    """resume.pt written by a version without `batching`: resumes at the default, refuses another value."""
    _train_killed(_cfg(tiny_model), tmp_path / "old", monkeypatch)
    state = torch.load(tmp_path / "old" / "resume.pt", weights_only=False)
    del state["config"]["batching"]  # as an older version wrote it
    torch.save(state, tmp_path / "old" / "resume.pt")
    with pytest.raises(ValueError, match="different config"):
        train(_cfg(tiny_model, batching="by_length"), tmp_path / "old", progress=False)
    train(_cfg(tiny_model), tmp_path / "old", progress=False)
    train(_cfg(tiny_model), tmp_path / "whole", progress=False)
    assert (tmp_path / "whole" / "trace.tsv").read_text() == (tmp_path / "old" / "trace.tsv").read_text()


def test_a_run_finished_before_a_new_training_key_counts_as_finished_if_the_key_is_at_its_default(tiny_model, tmp_path):
    """model/run.json written by a version without `batching`: the same command finds it finished; another value is an
    error, not a silent retrain."""
    train(_cfg(tiny_model), tmp_path / "old", progress=False)
    run_file = tmp_path / "old" / "model" / "run.json"
    run = json.loads(run_file.read_text())
    del run["train_config"]["batching"]  # as an older version wrote it
    run_file.write_text(json.dumps(run))
    assert train(_cfg(tiny_model), tmp_path / "old", progress=False)["already_finished"]
    with pytest.raises(ValueError, match=r"another config \(differs in \['batching'\]\)"):
        train(_cfg(tiny_model, batching="by_length"), tmp_path / "old", progress=False)


def test_a_run_saved_before_train_gather_is_what_it_was_the_masked_step(tiny_model, tmp_path, monkeypatch):
    """A retention run saved before `train_gather` existed trained with the masked step: finished, it counts as finished
    for `train_gather: false` only; killed, it resumes under `false` only. New runs record the key."""
    train(_cfg(tiny_model), tmp_path / "new", progress=False)
    assert json.loads((tmp_path / "new" / "model" / "run.json").read_text())["train_config"]["retention"] == \
        {"ratio": 0.5, "train_gather": True}
    run_file = tmp_path / "new" / "model" / "run.json"
    run = json.loads(run_file.read_text())
    del run["train_config"]["retention"]["train_gather"]  # as an older version wrote it
    run_file.write_text(json.dumps(run))
    masked = _cfg(tiny_model, retention={"ratio": 0.5, "train_gather": False})
    assert train(masked, tmp_path / "new", progress=False)["already_finished"]
    with pytest.raises(ValueError, match=r"another config \(differs in \['retention'\]\)"):
        train(_cfg(tiny_model), tmp_path / "new", progress=False)
    _train_killed(masked, tmp_path / "old", monkeypatch)
    state = torch.load(tmp_path / "old" / "resume.pt", weights_only=False)
    del state["config"]["retention"]["train_gather"]
    torch.save(state, tmp_path / "old" / "resume.pt")
    with pytest.raises(ValueError, match="different config"):
        train(_cfg(tiny_model), tmp_path / "old", progress=False)
    train(masked, tmp_path / "old", progress=False)
    train(masked, tmp_path / "whole", progress=False)
    assert (tmp_path / "whole" / "trace.tsv").read_text() == (tmp_path / "old" / "trace.tsv").read_text()


def test_nan_loss_stops_with_a_clear_error_and_no_checkpoint(tiny_model, tmp_path, monkeypatch):
    real = classification.build_model

    def nan_model(*args, **kwargs):
        model = real(*args, **kwargs)
        forward = model.forward

        def poisoned(**kw):
            out = forward(**kw)
            out["loss"] = out["loss"] * float("nan")
            return out
        model.forward = poisoned
        return model

    monkeypatch.setattr(classification, "build_model", nan_model)
    with pytest.raises(TrainingError, match="non-finite loss nan at step 1"):
        train(_cfg(tiny_model), tmp_path / "nan", progress=False)
    assert not (tmp_path / "nan" / "model").exists() and not (tmp_path / "nan" / "summary.json").exists()


def test_evaluate_writes_one_json_per_method_and_ratio(tiny_model, tmp_path):
    train(_cfg(tiny_model), tmp_path / "run", progress=False)
    methods = ["full", "learned", "random", "truncation", "heavy_hitter", "threshold"]
    results = _eval(tmp_path / "run" / "model", methods, [0.5, 0.3], tmp_path / "eval", size=40)
    names = sorted(p.name for p in (tmp_path / "eval").iterdir())
    assert names == sorted(["full.json", "threshold.json"] + [f"{m}_{r}.json" for m in methods[1:5] for r in ("0.5", "0.3")])
    for r in results:
        assert r["n_examples"] == 40 and 0 <= r["metrics"]["accuracy"] <= 100
        assert {"task", "method", "ratio", "seed", "split", "wall_seconds", "kept_fraction"} <= set(r)
        if r["method"] not in ("full", "threshold"):
            assert abs(r["kept_fraction_tokens"]["1"] - r["ratio"]) < 0.1
        each = r["per_example"]  # the same examples in the same order in every result: what paired tests pair
        assert each["id"] == results[0]["per_example"]["id"] and len(set(each["id"])) == 40
        assert sum(each["accuracy"]) / 40 == pytest.approx(r["metrics"]["accuracy"]) and len(each["prediction"]) == 40
        assert r["chance"] == results[0]["chance"] and 50.0 <= r["chance"]["accuracy"] <= 100.0  # majority label, 2 classes
    full = json.loads((tmp_path / "eval" / "full.json").read_text())
    assert full["kept_fraction"]["1"] == 1.0


def test_full_model_is_trained_by_the_same_command_and_takes_baselines(tiny_model, tmp_path):
    train(_cfg(tiny_model, retention=None), tmp_path / "full", progress=False)
    res = _eval(tmp_path / "full" / "model", ["full", "random", "heavy_hitter"], [0.3], tmp_path / "e", size=16)
    assert [r["method"] for r in res] == ["full", "random", "heavy_hitter"]
    with pytest.raises(ValueError, match="trained without retention: it has no learned scorers"):
        _eval(tmp_path / "full" / "model", ["learned"], [0.3], tmp_path / "e2", size=16)


def test_selections_that_keep_every_token_share_one_pass_of_the_full_model(tiny_model, tmp_path, monkeypatch):
    """Every method at ratio 1.0 computes the full model bit for bit, so evaluate runs that pass once."""
    from adaptive_retention import evaluate as evaluate_module

    train(_cfg(tiny_model, retention=None), tmp_path / "full", progress=False)
    alone = {m: _eval(tmp_path / "full" / "model", [m], [1.0], tmp_path / f"alone-{m}", size=40)[0]
             for m in ("random", "truncation", "heavy_hitter")}
    calls = []
    real = evaluate_module.run_features
    monkeypatch.setattr(evaluate_module, "run_features", lambda *a, **k: calls.append(a[-2]) or real(*a, **k))
    res = _eval(tmp_path / "full" / "model", {"full": [1.0], "random": [1.0, 0.5], "truncation": [1.0], "heavy_hitter": [1.0]},
                None, tmp_path / "shared", size=40)
    assert calls == ["full@1.0", "random@0.5"]
    assert {(r["method"], r["ratio"]): r["pass_of"] for r in res} == {("full", 1.0): "full@1", ("random", 1.0): "full@1",
                                                                   ("random", 0.5): "random@0.5", ("truncation", 1.0): "full@1",
                                                                   ("heavy_hitter", 1.0): "full@1"}
    shared = {r["method"]: r for r in res if r["ratio"] == 1.0}
    for m, r in alone.items():  # the separate pass of each method at 1.0 predicted exactly what the shared one did
        assert shared[m]["per_example"]["prediction"] == r["per_example"]["prediction"] == shared["full"]["per_example"]["prediction"]
        assert shared[m]["metrics"] == r["metrics"]


def test_evaluate_a_data_file(tiny_model, tmp_path):
    train(_cfg(tiny_model), tmp_path / "run", progress=False)
    f = tmp_path / "mine.jsonl"
    f.write_text("\n".join(json.dumps({"sentence": s, "label": l, "idx": i}) for i, (s, l) in enumerate([("great", 1), ("awful", 0)])))
    (r,) = _eval(tmp_path / "run" / "model", ["learned"], [0.5], tmp_path / "e", data_file=str(f))
    assert r["n_examples"] == 2 and r["split"] == "file"


@pytest.mark.parametrize("argv,message", [
    (["train", "--task", "mnli", "--out", "X"], "unknown task 'mnli'"),
    (["train", "--task", "sst2", "--out", "X", "--set", "retention.ratio=1.5"], "ratio must lie in (0, 1], got 1.5"),
    (["train", "--task", "sst2", "--out", "X", "--set", "epoch=2"], "unknown training config key(s) ['epoch']"),
    (["train", "--task", "sst2", "--out", "X", "--set", "retention.scorer=gru"], "unknown scorer 'gru'"),
    (["train", "--task", "sst2", "--out", "X", "--set", "lr=fast"], "lr must be a finite number, got 'fast'"),
    (["evaluate", "--checkpoint", "nowhere", "--out", "X"], "nowhere is not a checkpoint folder"),
    (["evaluate", "--checkpoint", "nowhere", "--out", "X", "--methods", "oracle"], "unknown method(s) ['oracle']"),
    (["evaluate", "--checkpoint", "nowhere", "--out", "X", "--ratios", "0"], "ratio(s) [0.0] outside (0, 1]"),
])
def test_cli_bad_input(argv, message, tmp_path, capsys, monkeypatch):
    """A bad value names itself; 3e-05 (no dot, a string to PyYAML) is read as a number."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "X").exists()


def test_evaluate_wrong_schema_file(tiny_model, tmp_path):
    train(_cfg(tiny_model), tmp_path / "run", progress=False)
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"text": "no sentence field", "label": 1}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing field\(s\) \['sentence'\]"):
        _eval(tmp_path / "run" / "model", ["learned"], [0.5], tmp_path / "e", data_file=str(f))
    assert not (tmp_path / "e").exists()


def _trained(tiny_model, tmp_path, **keys):
    train(_cfg(tiny_model, **keys), tmp_path / "abl", progress=False)
    run = json.loads((tmp_path / "abl" / "model" / "run.json").read_text())
    model, tok, _ = load_checkpoint(tmp_path / "abl" / "model")
    return run, retention_of(model), (tmp_path / "abl" / "trace.tsv").read_text().splitlines()


def _kept(model_dir, training=False):
    """One batch through the loaded checkpoint's encoder: its RetentionInfo, the output hidden states, the batch."""
    model, tok, _ = load_checkpoint(model_dir)
    batch = tok(["a truly wonderful and moving film about two friends", "dull and far too long"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.base_model.train(training)(**batch)
    return out.retention, out.last_hidden_state, batch


@pytest.mark.parametrize("keys,check", [
    ({"dual_update": "fixed", "lambda_init": 0.7}, lambda c: c["lambdas"] == [0.7]),
    ({"dual_update": "single_timescale"}, lambda c: c["eta"] == 1e-3),
    ({"dual": "global", "retention": {"ratio": 0.5, "schedule": "linear"}}, lambda c: len(c["lambdas"]) == 1 and len(c["targets"]) == 1),
])
def test_dual_switches(tiny_model, tmp_path, keys, check):
    run, _, _ = _trained(tiny_model, tmp_path, **keys)
    assert check(run["controller"])


def test_scorer_gate_and_mask_switches_take_effect(tiny_model, tmp_path):
    """recurrent scorer, sigmoid gate and budget, states-only soft mask: the checkpoint carries them; sigmoid gates are
    never exactly 0, so in training every token stays alive; evaluation still keeps the top half."""
    keys = {"retention": {"ratio": 0.5, "gate": "sigmoid", "budget_prob": "sigmoid", "soft_mask": "states", "scorer": "recurrent"}}
    run, retention, _ = _trained(tiny_model, tmp_path, **keys)
    assert all(isinstance(s, RecurrentScorer) for s in retention.scorers.values())
    assert retention.config.gate == "sigmoid" and retention.config.soft_mask == "states"
    info, _, _ = _kept(tmp_path / "abl" / "model", training=True)
    assert torch.equal(info.kept_counts[:, 0], info.n_tokens)
    _, ref, _ = _trained(tiny_model, tmp_path / "ref")
    assert all(isinstance(s, MLPScorer) for s in ref.scorers.values())
    (r,) = _eval(tmp_path / "abl" / "model", ["learned"], [0.5], tmp_path / "e", size=16)
    assert abs(r["kept_fraction_tokens"]["1"] - 0.5) < 0.1


def test_placement_and_restore_switches_take_effect(tiny_model, tmp_path):
    """placement final: one retention point after the last block; restore mask: dropped tokens come back as zeros."""
    _, retention, header = _trained(tiny_model, tmp_path, dual_units="tokens",
                                    retention={"ratio": 0.5, "placement": "final", "restore": "mask"})
    assert retention.boundaries == (2,)  # after the second (last) block of the tiny model
    assert {"kept_2", "target_2", "lambda_2"} <= set(header[0].split("\t")) and "kept_1" not in header[0].split("\t")
    info, hidden, batch = _kept(tmp_path / "abl" / "model")
    dropped = batch["attention_mask"].bool() & ~info.kept_mask
    assert dropped.any() and hidden[dropped].abs().max() == 0  # restore: mask
    _, ref, _ = _trained(tiny_model, tmp_path / "ref")
    assert ref.boundaries == (1,)
    info, hidden, batch = _kept(tmp_path / "ref" / "abl" / "model")
    dropped = batch["attention_mask"].bool() & ~info.kept_mask
    assert dropped.any() and (hidden[dropped].abs().amax(-1) > 0).all()  # restore: last_state keeps their states


def test_warm_start_begins_from_the_full_checkpoint_and_refuses_another(tiny_model, tmp_path):
    """init_from: backbone and head start as the fine-tuned full model's (a cold start has a fresh head); a checkpoint of
    another task, backbone or with retention is refused before training."""
    from adaptive_retention.train import _build

    train(_cfg(tiny_model, retention=None), tmp_path / "full", progress=False)
    full = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    warm = _build(_cfg(tiny_model, init_from=str(tmp_path / "full" / "model"))).model.state_dict()
    cold = _build(_cfg(tiny_model)).model.state_dict()
    assert all(torch.equal(warm[k], v) for k, v in full.items())
    assert not torch.equal(cold["classifier.weight"], full["classifier.weight"])
    assert any(k.startswith("bert.retention") for k in warm)  # the scorers are new
    train(_cfg(tiny_model), tmp_path / "ret", progress=False)
    with pytest.raises(ValueError, match="it was trained with retention"):
        train(_cfg(tiny_model, init_from=str(tmp_path / "ret" / "model")), tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match=r"it was fine-tuned from .*, not 'minilm'"):
        train(_cfg("minilm", init_from=str(tmp_path / "full" / "model")), tmp_path / "y", progress=False)
    with pytest.raises(ValueError, match="is not a checkpoint folder"):
        train(_cfg(tiny_model, init_from=str(tmp_path / "nowhere")), tmp_path / "z", progress=False)
    # distillation toward the warm-start checkpoint: the same first step, plus w · the distillation loss
    plain, taught = ({"init_from": str(tmp_path / "full" / "model"), "distill_weight": w} for w in (0.0, 3.0))
    train(_cfg(tiny_model, **plain), tmp_path / "plain", progress=False)
    train(_cfg(tiny_model, **taught), tmp_path / "taught", progress=False)
    first = {name: _trace(tmp_path / name)[0] for name in ("plain", "taught")}
    assert "distill_loss" not in first["plain"] and float(first["taught"]["distill_loss"]) > 0
    assert first["taught"]["task_loss"] == first["plain"]["task_loss"]
    assert float(first["taught"]["loss"]) == pytest.approx(float(first["plain"]["loss"]) + 3.0 * float(first["taught"]["distill_loss"]), rel=1e-5)
    assert not torch.equal(_weights(tmp_path / "plain")["classifier.weight"], _weights(tmp_path / "taught")["classifier.weight"])
    with pytest.raises(ValueError, match="distill_weight > 0 needs init_from"):
        _cfg(tiny_model, distill_weight=1.0)
