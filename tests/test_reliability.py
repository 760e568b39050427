"""Whatever the user types: one clear line and a non-zero exit (never a traceback, never a silent wrong answer), no lost
run. One test per defect of the hostile-user probes (issue 15), named after it; and random bad values for every config
key through the CLI."""

import json
import os
import shutil
import signal
import subprocess
import sys
import typing
from dataclasses import fields

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adaptive_retention import train as train_module
from adaptive_retention.cli import main
from adaptive_retention.config import EvalConfig, RetentionConfig, TrainConfig, read_config_file
from adaptive_retention.io import LOCK_FILE, claimed_folder
from adaptive_retention.plan import OWNED

from test_data import SHARED
from test_workflow import ROOT, smk


def _train_argv(model, out, *sets, ratio="0.5"):
    return ["train", "--task", "sst2", "--ratio", ratio, "--out", str(out), "--quiet", "--set", f"model={model}", "train_size=48",
            "batch_size=8", "checkpoint_every=2", f"data_dir={SHARED}", *sets]


@pytest.fixture(scope="module")
def checkpoint(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    assert main(_train_argv(tiny_model, out)) == 0
    return out / "model"


def _fails(argv, capsys, *needles) -> str:
    """The command exits 2 with one line on stderr that says each needle (no traceback: main returned)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _evaluate(checkpoint, out, *extra):
    return ["evaluate", "--checkpoint", str(checkpoint), "--out", str(out), "--data-dir", str(SHARED), "--size", "8", "--quiet", *extra]


# --- 1. a checkpoint missing its tokenizer files ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30))
def test_a_number_json_or_yaml_writes_is_read_back_as_that_number(x):
    """The workflow writes each run's config as JSON (3e-05 for the paper's learning rate) and the CLI reads it with YAML:
    YAML 1.1 reads 3e-05 as text, which stopped the default run's training jobs."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for name, text in (("c.json", json.dumps({"lr": x})), ("c.yaml", f"lr: {x!r}\nshort: 3e-5\nquoted: '3e-5'\n")):
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text)
            loaded = read_config_file(path)
            assert loaded["lr"] == x and isinstance(loaded["lr"], float)
    assert loaded["short"] == 3e-5 and loaded["quoted"] == "3e-5"
    assert TrainConfig.from_dict({"task": "sst2", "lr": loaded["short"]}).lr == 3e-5


def test_checkpoint_missing_tokenizer_files_is_refused_naming_them(checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    for f in broken.glob("tokenizer*"):
        f.unlink()
    _fails(_evaluate(broken, tmp_path / "e"), capsys, f"{broken} is not a whole checkpoint", "tokenizer_config.json",
           "tokenizer.json or vocab.txt")
    assert not (tmp_path / "e").exists()


def test_checkpoint_with_a_corrupt_run_record_is_refused(checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    run = json.loads((broken / "run.json").read_text())
    (broken / "run.json").write_text(json.dumps({**run, "labels": []}))
    _fails(_evaluate(broken, tmp_path / "e"), capsys, "needs its label names")
    (broken / "run.json").write_text(json.dumps({k: v for k, v in run.items() if k != "task"}))
    _fails(_evaluate(broken, tmp_path / "e"), capsys, "missing or malformed key(s) ['task']")


# --- 2. labels outside the label set ---------------------------------------------------------------------------------------

def test_unlabelled_rows_are_refused_for_scoring_with_a_hint(checkpoint, tmp_path, capsys):
    f = tmp_path / "test.jsonl"
    f.write_text('{"sentence": "good", "label": 1}\n{"sentence": "bad", "label": -1}\n')
    _fails(_evaluate(checkpoint, tmp_path / "e", "--data-file", str(f)), capsys, f"{f}: record 2: label -1 marks an unlabelled example",
           "use a labelled split or file")


def test_label_outside_the_set_in_training_is_a_clear_error(tiny_model, tmp_path, capsys):
    mirror = tmp_path / "data" / "glue-sst2"
    mirror.mkdir(parents=True)
    rows = [{"sentence": f"s{i}", "label": i % 2, "idx": i} for i in range(20)] + [{"sentence": "odd", "label": 7, "idx": 20}]
    for split in ("train", "validation"):
        (mirror / f"{split}.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    argv = _train_argv(tiny_model, tmp_path / "out", f"data_dir={tmp_path / 'data'}")
    _fails(argv, capsys, "record 21: label 7 is outside the label set (ids 0..1")


# --- 3. two writers, one folder --------------------------------------------------------------------------------------------

def test_second_writer_of_an_output_folder_is_refused(tiny_model, tmp_path, capsys):
    out = tmp_path / "run"
    with claimed_folder(out):  # another process would hold it the same way: flock conflicts across open files
        assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())
        _fails(_train_argv(tiny_model, out, "seed=1"), capsys, f"output folder {out} is in use by process {os.getpid()}")
    assert not (out / LOCK_FILE).exists()
    assert main(_train_argv(tiny_model, out)) == 0  # free again once the holder is done


def test_lock_of_a_killed_writer_does_not_block_the_rerun(tmp_path):
    out = tmp_path / "run"
    code = f"from adaptive_retention.io import claimed_folder\nimport os, signal\nwith claimed_folder({str(out)!r}): os.kill(os.getpid(), signal.SIGKILL)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert (out / LOCK_FILE).exists()  # left behind, but no process holds its flock
    with claimed_folder(out):
        assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())


# --- 4. unwritable outputs found before any compute -------------------------------------------------------------------------

@pytest.fixture
def no_compute(monkeypatch):
    """Loading a model or a checkpoint fails the test: an output error must come first."""
    def boom(*a, **k):
        raise AssertionError("compute started before the output was checked")
    from adaptive_retention import backbones, evaluate
    monkeypatch.setattr(train_module, "_build", boom)
    monkeypatch.setattr(evaluate, "_load", boom)
    monkeypatch.setattr(backbones, "resolve_model_path", boom)


def test_unwritable_out_is_found_before_any_compute(checkpoint, tmp_path, capsys, no_compute):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _fails(_train_argv("minilm", blocker / "run"), capsys, f"cannot write to output folder {blocker / 'run'}", "a file is in the way")
    _fails(_evaluate(checkpoint, blocker / "e"), capsys, f"cannot write to output folder {blocker / 'e'}")
    _fails(_evaluate(checkpoint, tmp_path / "e", "--bundle", str(blocker / "b.json")), capsys, f"cannot write {blocker / 'b.json'}")
    _fails(_evaluate(checkpoint, tmp_path / "e", "--examples-out", str(tmp_path)), capsys, f"cannot write {tmp_path}: it is a folder")
    _fails(["bench", "--model", "minilm", "--lengths", "16", "--quiet", "--out", str(blocker / "b.tsv")], capsys, f"cannot write {blocker / 'b.tsv'}")
    _fails(["bench-sweep", "--model", "minilm", "--quiet", "--fit", str(blocker / "f.json")], capsys, f"cannot write {blocker / 'f.json'}")


# --- 5. type gaps -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,message", [
    ('batch_size="16"', "batch_size must be an integer, got '16' (text: write it without quotes)"),
    ("train_size=abc", "train_size must be an integer or null, got 'abc'"),
    ("seed=abc", "seed must be an integer, got 'abc'"),
    ("max_length=-5", "max_length must be ≥ 8, got -5"),
    ("max_length=0", "max_length must be ≥ 8, got 0"),
    ("retention.ratio=true", "retention: ratio must be a finite number, got True"),
    ("retention.gather=1", "retention: gather must be true or false, got 1"),
    ("model=./no-such-folder", "model folder ./no-such-folder does not exist"),
])
def test_type_gaps_are_clear_errors_before_any_work(value, message, tmp_path, capsys, no_compute):
    argv = ["train", "--task", "sst2", "--out", str(tmp_path / "out"), "--set", value]
    _fails(argv, capsys, message)
    assert not (tmp_path / "out").exists()


def test_non_utf8_byte_names_file_and_line(checkpoint, tmp_path, capsys):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b'{"sentence": "fine", "label": 1}\n{"sentence": "caf\xe9", "label": 1}\n')
    _fails(_evaluate(checkpoint, tmp_path / "e", "--data-file", str(f)), capsys, f"{f}:2: not UTF-8 (byte 0xe9 at column 18)")


def test_null_sentence_names_the_record_and_field(checkpoint, tmp_path, capsys):
    f = tmp_path / "null.jsonl"
    f.write_text('{"sentence": "fine", "label": 1}\n{"sentence": null, "label": 0}\n{"sentence": "ok", "label": 0.5}\n')
    _fails(_evaluate(checkpoint, tmp_path / "e", "--data-file", str(f)), capsys, f"{f}: record 2: sentence must be a string, got None")
    f.write_text('{"sentence": "fine", "label": 1}\n{"sentence": "ok", "label": 0.5}\n')
    _fails(_evaluate(checkpoint, tmp_path / "e", "--data-file", str(f)), capsys, f"{f}: record 2: label must be a label id or name, got 0.5")


@pytest.mark.parametrize("argv,message", [
    (["evaluate", "--checkpoint", "c", "--out", "o", "--plan", '{"learned": 0.5}'], "plan.learned must be a list of ratios, e.g. [0.5]"),
    (["evaluate", "--checkpoint", "c", "--out", "o", "--plan", "[0.5]"], "plan must map each method to a list of ratios"),
    (["evaluate", "--checkpoint", "c", "--out", "o", "--batch-size", "0"], "batch_size must be ≥ 1, got 0"),
    (["evaluate", "--checkpoint", "c", "--out", "o", "--set", "siz=3"], "unknown evaluation config key(s) ['siz']"),
    (["bench", "--lengths", "0"], "argument --lengths: must be ≥ 8, got 0"),
    (["bench", "--batch-size", "0"], "argument --batch-size: must be ≥ 1, got 0"),
    (["bench", "--ratios", "1.5"], "argument --ratios: a kept ratio must lie in (0, 1], got 1.5"),
    (["bench-sweep", "--repeats", "x"], "argument --repeats: expected an integer, got 'x'"),
])
def test_plan_and_bench_arguments_are_clear_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse: the usage line and the message, exit 2
        rc = e.code
    assert rc == 2 and message in capsys.readouterr().err


def test_retention_switches_on_a_retention_checkpoint_are_refused(checkpoint, tmp_path, capsys):
    _fails(_evaluate(checkpoint, tmp_path / "e", "--set", "retention.scorer=recurrent"), capsys,
           "was trained with retention: its switches are fixed")


# --- lost and repeated work ------------------------------------------------------------------------------------------------

def test_kill_during_the_final_save_leaves_no_temporary_folder_after_the_rerun(tiny_model, tmp_path):
    """A real SIGKILL in the middle of writing the final model folder; the same command again finishes the run (from its last
    resumable state) to the same weights as an uninterrupted run, and the half-written folder is gone."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(_train_argv(tiny_model, whole)) == 0
    code = ("import os, signal\nfrom adaptive_retention import checkpoint\nfrom adaptive_retention.cli import main\n"
            "def dying(model, path):\n    open(path, 'wb').write(b'x' * 1000)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
            f"checkpoint.save_model = dying\nmain({_train_argv(tiny_model, killed)!r})\n")
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ, "HF_HUB_OFFLINE": "1"}).returncode == -signal.SIGKILL
    left = [p.name for p in killed.iterdir() if p.name.startswith(".model.")]
    assert left and (killed / "resume.pt").exists() and not (killed / "model").exists()
    assert main(_train_argv(tiny_model, killed)) == 0
    assert not [p for p in killed.iterdir() if p.name.startswith(".")]  # leftovers and the lock gone
    assert (whole / "model" / "model.safetensors").read_bytes() == (killed / "model" / "model.safetensors").read_bytes()
    assert (whole / "trace.tsv").read_text() == (killed / "trace.tsv").read_text()


def test_rerunning_a_finished_train_does_nothing_unless_forced(tiny_model, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(_train_argv(tiny_model, out)) == 0
    weights = out / "model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    builds = []
    real_build = train_module._build
    monkeypatch.setattr(train_module, "_build", lambda cfg: builds.append(cfg) or real_build(cfg))
    capsys.readouterr()
    assert main(_train_argv(tiny_model, out)) == 0
    assert "already trained with this config" in capsys.readouterr().out and not builds and weights.stat().st_mtime_ns == stamp
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "summary.json").stat().st_mode & 0o777 == 0o666 & ~umask  # atomic writes keep the usual permissions
    _fails(_train_argv(tiny_model, out, "seed=1"), capsys, f"{out} holds a finished run with another config (differs in ['seed'])",
           "--force")
    assert main(_train_argv(tiny_model, out, "seed=1") + ["--force"]) == 0
    assert len(builds) == 1 and json.loads((out / "model" / "run.json").read_text())["seed"] == 1


# --- random bad values for every config key ---------------------------------------------------------------------------------

def _bad_values(cls) -> st.SearchStrategy:
    """(key, value) pairs where value has the wrong type for the key's annotation, or lies outside its bounds or choices."""
    return st.one_of([st.tuples(st.just(k), v) for k, v in bad_value_per_key(cls).items()])


def bad_value_per_key(cls) -> dict[str, st.SearchStrategy]:
    """Per key of a config dataclass: values of a wrong type, out of bounds, or outside the choices (from the annotation and
    the `setting` rule; free-text and mapping keys get wrong types only)."""
    hints = typing.get_type_hints(cls)
    options = {}
    for f in fields(cls):
        types, rule = typing.get_args(hints[f.name]) or (hints[f.name],), f.metadata
        wrong = [st.lists(st.integers(), min_size=1, max_size=2)]
        wrong += [st.just({"x": 1})] if dict not in types else []
        wrong += [st.text(min_size=1, max_size=5)] if str not in types else []
        wrong += [st.booleans()] if bool not in types else []
        wrong += [st.floats(allow_nan=False)] if not {int, float, bool} & set(types) else []
        if float in types or int in types:
            if "gt" in rule or "ge" in rule:
                wrong.append(st.floats(max_value=rule.get("gt", rule.get("ge")), exclude_max="ge" in rule, allow_nan=False))
            if "lt" in rule or "le" in rule:
                wrong.append(st.floats(min_value=rule.get("lt", rule.get("le")), exclude_min="le" in rule, allow_nan=False))
            if int in types and float not in types:
                wrong.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)))
                wrong += [st.integers(max_value=rule["ge"] - 1)] if "ge" in rule else []
        if "choices" in rule:
            wrong.append(st.text(min_size=1, max_size=8).map(lambda s: f"no-{s}"))
        options[f.name] = st.one_of(wrong)
    return options


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.one_of(_bad_values(TrainConfig), _bad_values(RetentionConfig).map(lambda kv: (f"retention.{kv[0]}", kv[1]))))
def test_random_bad_training_values_are_one_clear_line(bad, tmp_path, capsys, no_compute):
    key, value = bad
    argv = ["train", "--out", str(tmp_path / "never"), "--set", "task=sst2", f"{key}={json.dumps(value)}"]  # a later --set wins
    err = _fails(argv, capsys)
    assert key.split(".")[-1] in err and not (tmp_path / "never").exists()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=_bad_values(EvalConfig))
def test_random_bad_evaluation_values_are_one_clear_line(bad, tmp_path, capsys, no_compute):
    key, value = bad
    argv = ["evaluate", "--checkpoint", str(tmp_path / "c"), "--out", str(tmp_path / "never"), "--set", f"{key}={json.dumps(value)}"]
    err = _fails(argv, capsys)
    assert key in err and not (tmp_path / "never").exists()


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], phases=[Phase.generate])
@given(train=st.fixed_dictionaries({k: v for k, v in bad_value_per_key(TrainConfig).items() if k not in OWNED}),
       retention=st.fixed_dictionaries({k: v for k, v in bad_value_per_key(RetentionConfig).items() if k != "ratio"}))
def test_random_bad_values_of_every_key_fail_the_workflow_dry_run(train, retention, tmp_path):
    """Every training key and retention switch bad at once: `snakemake -n` exits non-zero naming each (where the jobs would
    have failed one at a time), without a Python traceback. (An unknown key: test_plan; the schema's own keys: test_workflow.)"""
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    cfg.update(train={**cfg["train"], **train}, retention=retention, study={"enabled": False})
    for task in cfg["tasks"].values():
        task["train"] = {}  # else the per-task keys would win over the bad ones
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = smk("-n", "--configfile", str(bad), check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Traceback" not in text, text[-3000:]
    for key in [*train, *retention]:
        assert f"{key} must" in text or f"unknown {key}" in text, (key, text[-3000:])
