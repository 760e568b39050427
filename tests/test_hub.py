"""The hub path, proven against the local Hub (tests/hub): every paper task loads through `source: hub`
with the replica's sizes and label names; each old source of the issue table fails there as it does on
the real Hub; pre-flight and the preparation stage behave. Loads run in subprocesses: huggingface_hub
reads HF_ENDPOINT and the offline switches when it is imported."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adaptive_retention.data import CUAD_LABELS, HUB, TASKS, cuad_category
from adaptive_retention.prepare import PreflightError, check_model

ROOT = Path(__file__).resolve().parents[1]
PAPER_TASKS = ("sst2", "imdb", "cuad", "arxiv", "qasper", "pubmed")


def run_py(hub, code: str, **env) -> dict:
    """Run `code` (which prints one JSON line last) in a fresh interpreter pointed at the local Hub."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=hub.env(**env), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LOAD = """
import json
from adaptive_retention.data import get_task, load_examples, source_records
out = {}
for task in %r:
    row = {}
    for split in ("train", "eval"):
        records, _, origin, labels = source_records(get_task(task), split, "hub", None, 0)
        s = load_examples(task, split, "hub")
        row[split] = {"rows": len(records), "examples": len(s.examples), "labels": list(s.labels), "origin": s.origin,
                      "arrow": hasattr(records, "column_names"),
                      "chunked": sum(1 for e in s.examples if "_" in e["id"].rsplit("__", 1)[-1].split("#")[0])}
    out[task] = row
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def loaded(local_hub):
    return run_py(local_hub, LOAD % ((*PAPER_TASKS, "arxiv-category"),))


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_every_paper_task_loads_through_the_hub_path(task, loaded, local_hub):
    got, want = loaded[task], local_hub.sizes[task]
    if task == "cuad":  # question rows of the release archive; clause examples are fewer (non-empty spans, 29 kept categories)
        assert (got["train"]["rows"], got["eval"]["rows"]) == (want["train_rows"], want["eval_rows"])
        assert got["train"]["labels"] == list(CUAD_LABELS) and 0 < got["eval"]["examples"] < got["eval"]["rows"]
    else:
        assert (got["train"]["rows"], got["eval"]["rows"]) == (want["train"], want["eval"])
        assert got["train"]["examples"] > 0 and got["eval"]["examples"] > 0
    source = HUB[task]
    assert all(source.describe() in got[s]["origin"] for s in ("train", "eval"))
    if task != "cuad":
        assert got["train"]["arrow"], "hub records should stay Arrow-backed, not be copied into a list"


def test_sst2_namespaced_repo_loads_and_the_legacy_id_fails(loaded, local_hub, tmp_path):
    assert HUB["sst2"].repo == "nyu-mll/glue" and loaded["sst2"]["train"]["labels"] == ["negative", "positive"]
    err = run_py(local_hub, FAIL % ("glue", "sst2", None, None), HF_HOME=str(tmp_path))
    assert err["error"] in ("DatasetNotFoundError", "HfUriError", "HFValidationError"), err


def test_imdb_label_names_come_from_the_class_label(loaded):
    assert loaded["imdb"]["train"]["labels"] == ["neg", "pos"] == list(TASKS["imdb"].labels)


FAIL = """
import json, datasets
try:
    datasets.load_dataset_builder(%r, %r, revision=%r, data_dir=%r)
    print(json.dumps({"error": None}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
"""


def test_script_only_repos_are_refused_and_their_replacements_load(loaded, local_hub, tmp_path):
    for repo in ("theatticusproject/cuad-qa", "allenai/qasper"):  # a fresh cache: datasets falls back to a cached copy
        err = run_py(local_hub, FAIL % (repo, None, None, None), HF_HOME=str(tmp_path))
        assert err["error"] == "RuntimeError" and "Dataset scripts are no longer supported" in err["message"], err
    assert HUB["qasper"].revision == "refs/convert/parquet" and loaded["qasper"]["eval"]["examples"] > 0
    assert loaded["cuad"]["eval"]["rows"] > 0  # from the release archive


@pytest.mark.parametrize("task", ["arxiv", "pubmed"])
def test_two_config_repos_need_a_config_name(task, loaded, local_hub, tmp_path):
    err = run_py(local_hub, FAIL % (HUB[task].repo, None, HUB[task].revision, None), HF_HOME=str(tmp_path))
    assert err["error"] == "ValueError" and "section" in err["message"] and "document" in err["message"], err
    assert HUB[task].config == "section" and loaded[task]["train"]["examples"] > 0


def test_arxiv_classification_gets_one_logit_per_class_label(loaded, local_hub):
    labels = loaded["arxiv-category"]["train"]["labels"]
    assert labels == local_hub.sizes["arxiv-category"]["labels"] and len(labels) == 11
    assert max(2, len(labels)) == 11  # train.py builds the head with max(2, len(split.labels)) logits: 2 before the fix


def test_chunked_cuad_ids_keep_their_category():
    assert cuad_category({"id": "ACME_AGREEMENT__Parties"}) == "Parties"
    assert cuad_category({"id": "ACME_AGREEMENT__Parties_3"}) == "Parties"
    assert cuad_category({"id": "X__Affiliate License-Licensee_12"}) == "Affiliate License-Licensee"
    assert cuad_category({"id": "X__Not A Category_2"}) == "Not A Category_2"


def test_chunked_cuad_train_rows_are_kept_through_the_hub(loaded, local_hub):
    assert local_hub.sizes["cuad"]["chunked_rows"] > 0
    assert loaded["cuad"]["train"]["chunked"] > 0  # before the fix every chunked row was dropped


def test_model_id_without_namespace_is_caught_before_any_job(local_hub):
    with pytest.raises(PreflightError, match="distilbert/distilbert-base-uncased"):
        check_model("distilbert-base-uncased")
    code = """
import json
from transformers import AutoConfig
out = {}
for m in ("distilbert-base-uncased", "distilbert/distilbert-base-uncased"):
    try:
        out[m] = AutoConfig.from_pretrained(m).model_type
    except Exception as e:
        out[m] = "error: " + type(e).__name__
print(json.dumps(out))
"""
    out = run_py(local_hub, code)
    assert out["distilbert/distilbert-base-uncased"] == "distilbert" and out["distilbert-base-uncased"].startswith("error")


def test_preflight_names_task_repo_and_fix_for_every_failure(local_hub, tmp_path):
    code = """
import dataclasses, json
from adaptive_retention import data
from adaptive_retention.prepare import check_dataset, check_model, PreflightError
out = {}
cases = {"script": data.HubSource("allenai/qasper", None, "main", ""), "config": data.HubSource("ccdv/pubmed-summarization", None, "%s", ""),
         "unknown": data.HubSource("nobody/nothing", None, "main", "")}
for name, source in cases.items():
    data.TASKS["qasper"] = dataclasses.replace(data.TASKS["qasper"], hub=source)
    try:
        check_dataset("qasper"); out[name] = None
    except PreflightError as e:
        out[name] = str(e)
try:
    check_model("nobody/missing-model"); out["model"] = None
except PreflightError as e:
    out["model"] = str(e)
print(json.dumps(out))
""" % HUB["pubmed"].revision
    out = run_py(local_hub, code)
    assert "task 'qasper'" in out["script"] and "loading script" in out["script"] and "refs/convert/parquet" in out["script"]
    assert "config problem" in out["config"] and "section" in out["config"]
    assert "nobody/nothing" in out["unknown"] and "cannot resolve" in out["unknown"]
    assert "nobody/missing-model" in out["model"]


def test_preflight_offline_says_how_to_proceed(local_hub):
    code = """
import json
from adaptive_retention.prepare import check_dataset, PreflightError
try:
    check_dataset("sst2"); print(json.dumps({"error": None}))
except PreflightError as e:
    print(json.dumps({"error": str(e)}))
"""
    out = run_py(local_hub, code, HF_HUB_OFFLINE="1")
    assert "cannot be checked offline" in out["error"] and "source: local" in out["error"]


def test_prepared_snapshot_is_what_jobs_read_offline(local_hub, tmp_path):
    """prepare-data fetches from the hub once; load_examples then reads the snapshot with the hub switched off
    and gets the same examples and labels; the manifest records the pinned and resolved revision."""
    cli = [sys.executable, "-m", "adaptive_retention.cli"]
    for task in ("arxiv-category", "cuad"):
        out = subprocess.run(cli + ["prepare-data", "--task", task, "--source", "hub", "--out", str(tmp_path / task)],
                             cwd=ROOT, env=local_hub.env(), capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    manifest = json.loads((tmp_path / "arxiv-category" / "manifest.json").read_text())
    assert manifest["hub"]["requested_revision"] == "main" and len(manifest["hub"]["resolved_revision"]) == 40
    assert len(manifest["labels"]) == 11 and not (tmp_path / "arxiv-category.tmp").exists()
    assert len(json.loads((tmp_path / "cuad" / "manifest.json").read_text())["hub"]["archive_sha1"]) == 40
    code = f"""
import json
from adaptive_retention.data import load_examples
out = {{}}
for task in ("arxiv-category", "cuad"):
    s = load_examples(task, "eval", "prepared", {str(tmp_path)!r})
    out[task] = [len(s.examples), list(s.labels), s.origin]
print(json.dumps(out))
"""
    offline = run_py(local_hub, code, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    online = run_py(local_hub, LOAD % (("arxiv-category", "cuad"),))
    for task in ("arxiv-category", "cuad"):
        assert offline[task][0] == online[task]["eval"]["examples"] and offline[task][1] == online[task]["eval"]["labels"]
        assert offline[task][2].startswith("prepared:")


def test_docs_hub_table_matches_the_registry():
    text = (ROOT / "docs/tasks.md").read_text()
    table = text[text.index("<!-- hub sources -->"):text.index("<!-- /hub sources -->")]
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if line.startswith("| `")}
    assert set(rows) == set(HUB)
    for task, source in HUB.items():
        where = getattr(source, "repo", None) or source.url
        assert f"`{where}`" in rows[task], task
        if hasattr(source, "revision"):
            assert f"`{source.revision}`" in rows[task] and f"`{source.config or source.data_dir}`" in rows[task], task


def test_docs_task_table_matches_the_registry():
    """The task table's max length column is each TaskSpec's."""
    text = (ROOT / "docs/tasks.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|")[-2].strip() for line in text.splitlines()
            if line.startswith("| `") and line.count("|") == 7}
    assert {task: int(v) for task, v in rows.items()} == {t.id: t.max_length for t in TASKS.values()}


def test_preflight_command_prints_what_resolved_and_fails_naming_the_fix(local_hub):
    out = subprocess.run([sys.executable, "-m", "adaptive_retention.cli", "preflight", "--tasks", "sst2", "cuad",
                          "--models", "distilbert/distilbert-base-uncased", "distilbert-base-uncased"],
                         cwd=ROOT, env=local_hub.env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "task 'sst2': nyu-mll/glue config sst2" in out.stdout and "release archive reachable" in out.stdout
    assert "model 'distilbert/distilbert-base-uncased': distilbert" in out.stdout
    assert "pre-flight failed" in out.stderr and "use the namespaced id" in out.stderr and "Traceback" not in out.stderr
