"""SFT through the real CLI on a 4x2 mesh: the validation loss falls, and a run SIGKILLed after its
first checkpoint and restarted with the same command ends with exactly the same parameters (and
the same `xlalign score` output) as an uninterrupted run."""
import json
import pathlib
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from xlalign_jax import checkpoints, partitioning, training

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS, PERIOD = 12, 4
SMALL_MODEL = ["--gin.ModelConfig.emb_dim=32", "--gin.ModelConfig.mlp_dim=64",
               "--gin.ModelConfig.num_heads=2", "--gin.ModelConfig.head_dim=16",
               "--gin.ModelConfig.vocab_size=512"]


# The subprocesses inherit conftest's environment: 8 devices, the compile flags, the cache.
def _train_cmd(model_dir):
  return [sys.executable, "-m", "xlalign_jax.cli", "train",
          "--gin_file=gin_configs/experiments/smoke_sft.gin", f"--gin.MODEL_DIR={model_dir}",
          f"--gin.TRAIN_STEPS={STEPS}", f"--gin.CHECKPOINT_PERIOD={PERIOD}",
          f"--gin.EVAL_PERIOD={PERIOD}", "--gin.BATCH_SIZE=8", *SMALL_MODEL]


def _score(model_dir, tmp_path, name):
  rows = [{"inputs": "reverse: ka lo mi", "targets": "mi lo ka"},
          {"inputs": "reverse: te su", "targets": "su te"},
          {"inputs": "reverse: pa", "targets": "pa"}]
  src = tmp_path / "score_in.jsonl"
  src.write_text("".join(json.dumps(r) + "\n" for r in rows))
  out = tmp_path / f"{name}.jsonl"
  vocab = REPO.parent / "shared/data/sentencepiece/t5_test_sentencepiece.model"
  if not vocab.exists():
    pytest.skip(f"shared sentencepiece model not found at {vocab}")
  subprocess.run([sys.executable, "-m", "xlalign_jax.cli", "score", "--checkpoint",
                  str(model_dir), "--vocab", str(vocab), "--input", str(src), "--output",
                  str(out)], check=True, cwd=REPO, capture_output=True)
  return [json.loads(l)["loglik"] for l in out.read_text().splitlines()]


def _final_params(model_dir):
  config = checkpoints.load_model_config(str(model_dir))
  mesh = partitioning.create_mesh(partitioning.MeshConfig())
  abstract, _ = training.abstract_params(training.build_model(config), mesh,
                                         partitioning.DATA_PARALLEL_RULES)
  return jax.device_get(checkpoints.restore_params(str(model_dir), abstract))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  base = tmp_path_factory.mktemp("resume")
  full = subprocess.run(_train_cmd(base / "full"), cwd=REPO, capture_output=True,
                        text=True)
  assert full.returncode == 0, full.stderr[-2000:]

  # Same command, SIGKILLed as soon as its first checkpoint is committed, then restarted.
  killed_dir = base / "killed"
  proc = subprocess.Popen(_train_cmd(killed_dir), cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not (killed_dir / "checkpoints" / str(PERIOD)).is_dir():
    assert proc.poll() is None, "run ended before its first checkpoint"
    assert time.time() < deadline
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps_at_kill = checkpoints.TrainCheckpointer(str(killed_dir), None, PERIOD,
                                                3).manager.all_steps()
  assert STEPS not in steps_at_kill, "killed too late to test resumption"
  resumed = subprocess.run(_train_cmd(killed_dir), cwd=REPO, capture_output=True,
                           text=True)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  return base / "full", killed_dir, full.stdout, resumed.stdout


def test_validation_loss_falls_on_a_4x2_mesh(runs):
  _, _, log, _ = runs
  assert "mesh {'data': 4, 'model': 2}" in log
  losses = [float(x) for x in re.findall(r"validation_loss=([0-9.]+)", log)]
  assert len(losses) >= 2
  assert losses[-1] < losses[0] - 0.1, losses
  assert (runs[0] / "config.gin").read_text().count("MODEL_DIR") >= 1


def test_killed_and_restarted_run_equals_uninterrupted(runs, tmp_path):
  full_dir, killed_dir, _, resumed_log = runs
  assert "resuming from checkpoint step" in resumed_log
  full, resumed = _final_params(full_dir), _final_params(killed_dir)
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  assert _score(full_dir, tmp_path, "full") == _score(killed_dir, tmp_path, "resumed")


def test_resuming_with_other_settings_is_refused_and_changes_nothing(runs):
  """A longer run or another mesh may resume; another learning rate or batch size would leave
  checkpoints that mix two runs."""
  full_dir = runs[0]
  config_before = (full_dir / "config.gin").read_text()
  steps_before = sorted(p.name for p in (full_dir / "checkpoints").iterdir())
  rerun = subprocess.run(_train_cmd(full_dir) + ["--gin.BATCH_SIZE=16", "--gin.LEARNING_RATE=0.01",
                                                 "--gin.TRAIN_STEPS=20", "--gin.MODEL_PARALLEL=1"],
                         cwd=REPO, capture_output=True, text=True)
  assert rerun.returncode != 0
  assert "Traceback" not in rerun.stderr
  message = rerun.stderr.strip().splitlines()[-1]
  assert f"holds a run at step {STEPS} trained with batch_size=8 (now 16), " \
         "optimizer_config.learning_rate=0.003 (now 0.01); resuming would mix two runs" in message
  assert "TRAIN_STEPS" not in message and "mesh" not in message
  assert (full_dir / "config.gin").read_text() == config_before
  assert sorted(p.name for p in (full_dir / "checkpoints").iterdir()) == steps_before
