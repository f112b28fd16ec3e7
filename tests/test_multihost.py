"""A multi-host job on one machine: two processes with one CPU device each, joined by
jax.distributed the way the workers of a TPU pod are, run the tiny grid of test_experiment through
`xlalign run` (gin: MULTI_HOST=True and the coordinator's address), for one language: a second one
repeats the same kinds of stage, and the cross-lingual grid is test_experiment's. Every stage
finishes on both, result files are written once (no duplicated rated rows), and the rewards the
two processes computed together equal those of this single process."""
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import xlalign_tasks
from test_experiment import TINY
from xlalign_jax import partitioning
from xlalign_jax.data import seahorse as seahorse_data
from xlalign_jax.score import Scorer

PROCESSES = 2
ONE_LANGUAGE = ["ExperimentConfig.langs = ('en',)", "ExperimentConfig.ppo_pairs = (('en', 'en'),)"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_processes(command, workdir, name, timeout=900):
  """`python -m xlalign_jax.cli COMMAND` as PROCESSES processes of one multi-host job (one CPU
  device each, joined over 127.0.0.1) -> each process's log; fails with the log of one that
  failed."""
  coordinator = f"127.0.0.1:{_free_port()}"
  one_device = re.sub(r"(--xla_force_host_platform_device_count=)\d+", r"\g<1>1",
                      os.environ["XLA_FLAGS"])  # and the tests' compile flags (conftest)
  env = dict(os.environ, XLA_FLAGS=one_device,
             XLALIGN_JAX_CACHE=str(workdir / "jax_cache"))
  procs = []
  for p in range(PROCESSES):
    args = [sys.executable, "-m", "xlalign_jax.cli", *command, "--gin.MULTI_HOST=True",
            f"--gin.MeshConfig.coordinator_address='{coordinator}'",
            f"--gin.MeshConfig.num_processes={PROCESSES}", f"--gin.MeshConfig.process_id={p}"]
    with open(workdir / f"{name}_{p}.log", "w") as log:
      procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT))
  # When one process fails, the other would wait at the next collective: stop it too.
  deadline = time.time() + timeout
  while any(proc.poll() is None for proc in procs):
    if time.time() > deadline or any(proc.poll() not in (None, 0) for proc in procs):
      time.sleep(5)
      for proc in procs:
        proc.kill()
      break
    time.sleep(1)
  logs = [(workdir / f"{name}_{p}.log").read_text() for p in range(PROCESSES)]
  for p, (proc, log) in enumerate(zip(procs, logs)):
    assert proc.wait() == 0, f"process {p} failed:\n{log[-3000:]}"
  return logs


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("multihost")
  command = ["run", "experiments/demo.gin", f"--gin.ExperimentConfig.workdir='{workdir}'",
             *[f"--gin_bindings={b}" for b in TINY + ONE_LANGUAGE]]
  return workdir, run_processes(command, workdir, "process")


def test_every_stage_finishes_on_every_process(grid):
  workdir, logs = grid
  for log in logs:
    assert "mesh {'data': 2, 'model': 1}" in log  # one mesh over both processes' devices
    assert "[stage 10/10] report" in log and "done in" in log
  results = json.loads((workdir / "results.json").read_text())
  pairs = {(r["method"], r["source"], r["target"]) for r in results["winrates"]}
  assert pairs == {("bon", "en", "en"), ("ppo", "en", "en")}
  assert all(r["n"] == 12 for r in results["winrates"])


def test_rated_rows_are_written_once(grid):
  workdir, _ = grid
  counts = json.loads((workdir / "stages" / "rate_en" / "counts.json").read_text())
  rated = seahorse_data.load(str(workdir / "data" / "seahorse"), "train").rated("en")
  mine = [r for r, _ in rated if r.model == "sft_en"]
  assert len(mine) == counts["train.sft_en.tsv"]["yes"] + counts["train.sft_en.tsv"]["no"]


def test_rewards_match_a_single_process(grid):
  workdir, _ = grid
  rows = [json.loads(line) for line in
          (workdir / "stages" / "bon_en" / "candidates.jsonl").read_text().splitlines()]
  xlalign_tasks.configure(data_dir=str(workdir / "data"))
  vocab = xlalign_tasks.VOCABULARY
  scorer = Scorer(str(workdir / "stages" / "rm_en" / "model"), 8, reward=True,
                  mesh_config=partitioning.MeshConfig())
  inputs = [r["inputs"] for r in rows for _ in r["candidates"]]
  outputs = [c for r in rows for c in r["candidates"]]
  mine = scorer.score_texts(vocab, inputs, outputs).reshape(len(rows), -1)
  theirs = np.array([r["rewards"]["en"] for r in rows])
  np.testing.assert_allclose(theirs, mine, atol=1e-4)
  assert [r["chosen"]["en"] for r in rows] == list(np.argmax(theirs, axis=1))


def test_rm_eval_command_as_a_multi_host_job(grid):
  """The inference commands join the job before anything touches devices (rm-eval reads its task
  first), and compute what the grid's own rm_eval stage did."""
  workdir, _ = grid
  out = workdir / "rm_eval_cli.json"
  run_processes(["rm-eval", "--checkpoint", str(workdir / "stages" / "rm_en" / "model"), "--task",
                 "xlalign_v1.seahorse.en.rm", "--data_dir", str(workdir / "data"), "--output",
                 str(out)], workdir, "rm_eval", timeout=300)
  (mine,) = json.loads(out.read_text())["rm_accuracy"]
  stage = json.loads((workdir / "stages" / "rm_eval" / "rm_accuracy.json").read_text())
  (theirs,) = [e for e in stage["rm_accuracy"] if (e["source"], e["target"]) == ("en", "en")]
  assert mine["n"] == theirs["n"] and mine["accuracy"] == theirs["accuracy"]
  assert mine["auc"] == pytest.approx(theirs["auc"], abs=1e-9)


def test_per_process_file_names(monkeypatch):
  from xlalign_jax import fileio
  assert fileio.per_process_name("error.log") == "error.log"  # one process: the plain name
  monkeypatch.setattr(fileio.jax, "process_count", lambda: 2)
  monkeypatch.setattr(fileio.jax, "process_index", lambda: 1)
  assert fileio.per_process_name("error.log") == "error.process1.log"
  assert fileio.per_process_name("trace") == "trace.process1"
