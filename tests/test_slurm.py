"""The cluster profile on a real scheduler: a one-node Slurm cluster started on this machine
(tests/slurm/start.sh), part of the test config submitted through `--profile profiles/slurm`.

Checks: every job went through sbatch (sacct lists it, completed), the outputs equal a local run's,
a failing job is reported failed with its log path, and the cluster is stopped afterwards even when
a check fails (the fixture's finally)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "tests" / "slurm"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
ACCOUNT, PARTITION = "ci", "debug"
# the profile users copy, with the two FILL IN values and a short first status check for this local cluster
PROFILE_ARGS = ["--profile", "profiles/slurm", "--default-resources", f"slurm_account={ACCOUNT}", f"slurm_partition={PARTITION}",
                "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5"]
TARGETS = ["sst2/full/seed0/eval.json", "sst2/r0.5/seed0/eval.json"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    env = {**ENV, "SLURM_TEST_ACCOUNT": ACCOUNT, "SLURM_TEST_PARTITION": PARTITION}
    try:
        subprocess.run(["bash", str(SLURM / "start.sh"), str(state)], check=True, env=env, timeout=600)
        yield state
    finally:
        subprocess.run(["bash", str(SLURM / "stop.sh"), str(state)], env=env, timeout=120)
        assert not (state / "pids").exists()
        # the stopped cluster's clients fail at once, not after 10 s (every later Snakemake start runs scontrol)
        assert Path("/etc/slurm/slurm.conf").read_text().splitlines()[-1] == "MessageTimeout=1"


def smk(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)


def _results(results_dir: str) -> dict:
    out = {}
    for t in TARGETS:
        for r in json.loads((ROOT / results_dir / t).read_text()):
            out[(t, r["method"], r["ratio"])] = (r["metrics"], r["kept_fraction"])
    return out


def test_profile_runs_on_slurm_like_locally(cluster):
    for d in ("results/test-slurm", "results/test-local"):
        shutil.rmtree(ROOT / d, ignore_errors=True)
    local = smk("--configfile", "config/test.yaml", "--config", "results_dir=results/test-local", "--cores", "2",
                *[f"results/test-local/{t}" for t in TARGETS])
    assert local.returncode == 0, local.stderr[-3000:]
    start = time.strftime("%Y-%m-%dT%H:%M:%S")
    run = smk("--configfile", "config/test.yaml", "--config", "results_dir=results/test-slurm", *PROFILE_ARGS,
              *[f"results/test-slurm/{t}" for t in TARGETS])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _results("results/test-slurm") == _results("results/test-local")
    # every job but the local rules went through sbatch: sacct knows one completed job per Snakemake job (2 × train,
    # 2 × evaluate; the tiny model in resources/ is shared with the local run)
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", run.stdout + run.stderr)
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-S", start, "-o", "JobID,State,Account,Partition"], capture_output=True,
                           text=True, check=True).stdout.split()
    jobs = [line.split("|") for line in sacct]
    local_rules = 1 + len(TARGETS)  # prepare_data and each run's run_config run on the submitting host
    assert done and int(done[-1][1]) == len(jobs) + local_rules and len(jobs) >= 4, (done, sacct)
    assert all(j[1] == "COMPLETED" and j[2] == ACCOUNT and j[3] == PARTITION for j in jobs), sacct


def test_failing_job_is_reported_with_its_log(cluster, tmp_path):
    shutil.copy(SLURM / "failing" / "Snakefile", tmp_path / "Snakefile")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    start = time.strftime("%Y-%m-%dT%H:%M:%S")
    run = smk(*PROFILE_ARGS, "--retries", "0", cwd=tmp_path)
    text = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Error in rule fail_on_purpose" in text and "logs/fail_on_purpose.log" in text, text[-3000:]
    states = subprocess.run(["sacct", "-n", "-X", "-P", "-S", start, "-o", "State"], capture_output=True, text=True, check=True).stdout.split()
    assert states == ["FAILED"], states


HUB_TARGETS = ["sst2/full/seed0/eval.json", "cuad/full/seed0/eval.json"]


def test_paper_path_prepares_from_the_hub_and_jobs_run_offline(cluster, local_hub, tmp_path):
    """The paper config's path in small: `source: hub` and a hub model id, submitted with the profile while the
    submitting host reaches the (local) Hub. The preparation rules run on the submitting host (localrules) and
    fetch from the Hub; the train and evaluate jobs run through sbatch with HF_HUB_OFFLINE=1 and succeed from
    the snapshots alone."""
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    results = "results/test-hub-slurm"
    shutil.rmtree(ROOT / results, ignore_errors=True)
    cfg.update(results_dir=results, source="hub", model="distilbert/distilbert-base-uncased", budgets=[0.5],
               tasks={"sst2": cfg["tasks"]["sst2"], "cuad": {"train": {"train_size": 24, "epochs": 1, "batch_size": 8, "lr": 1.0e-3,
                                                                        "max_length": 48}, "eval_size": 20}},
               benchmark={**cfg["benchmark"], "enabled": False}, theory={**cfg["theory"], "enabled": False},
               study={**cfg["study"], "enabled": False})
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(cfg))
    start = time.strftime("%Y-%m-%dT%H:%M:%S")
    run = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", str(config), *PROFILE_ARGS,
                          *[f"{results}/{t}" for t in HUB_TARGETS]], cwd=ROOT, env=local_hub.env(), capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    prepared = ROOT / results / "prepared"
    for task in ("sst2", "cuad"):
        manifest = json.loads((prepared / "data" / task / "manifest.json").read_text())
        assert manifest["splits"]["train"]["origin"].startswith("hub:")
        origin = json.loads((ROOT / results / task / "full/seed0/model/run.json").read_text())["train_origin"]
        assert origin.startswith(f"prepared:{results}/prepared/data/{task}/train <- hub:"), origin
    assert json.loads((prepared / "models/distilbert--distilbert-base-uncased/prepared.json").read_text())["id"] == \
        "distilbert/distilbert-base-uncased"
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-S", start, "-o", "JobID,State"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(sacct) == 4 and all(j.endswith("|COMPLETED") for j in sacct), sacct  # 2 × train, 2 × evaluate; prepare ran locally
    assert (run.stdout + run.stderr).count("localrule prepare_") == 3  # 2 datasets + 1 model, on the submitting host
