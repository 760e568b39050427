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
    # every job went through sbatch: sacct knows one completed job per Snakemake job (2 × train, 2 × evaluate; the tiny
    # model in resources/ is shared with the local run)
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", run.stdout + run.stderr)
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-S", start, "-o", "JobID,State,Account,Partition"], capture_output=True,
                           text=True, check=True).stdout.split()
    jobs = [line.split("|") for line in sacct]
    assert done and int(done[-1][1]) == len(jobs) >= 4, (done, sacct)
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
