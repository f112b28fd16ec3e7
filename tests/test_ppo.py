"""The PPO trainer on a tiny world with tiny random SFT and reward models (a random RM is a
legitimate fixed reward function): the first update is the same on 2 and 8 devices; the reward
rises while the KL stays bounded; a run SIGKILLed mid-way and restarted ends where an
uninterrupted one does (parameters and `xlalign score` output); a non-finite reward or a KL past
`max_kl` stops the run before saving, naming the step and the last good checkpoint; Okapi's top-k
layer training updates only those. GAE, the clipped objective and the KL estimators are tested
against NumPy in test_losses.py."""
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

import xlalign_tasks
from tiny_world import SPM, write_tiny_world
from xlalign_jax import checkpoints, cli, partitioning, run_history, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError
from xlalign_jax.trainers import loop, ppo
from xlalign_jax.trainers.reward import HEAD
from xlalign_tasks import settings

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ModelConfig(vocab_size=64, emb_dim=32, num_heads=2, head_dim=16, num_encoder_layers=1,
                   num_decoder_layers=1, mlp_dim=64)
RULES = partitioning.DATA_PARALLEL_RULES
LENGTHS = {"inputs": 32, "targets": 8}
# Every run shares these, so the runs on one mesh compile one program (the suite's compilation
# cache, conftest.py, then serves it to the other tests and to the CLI subprocesses). Two shuffled
# minibatches and two epochs exercise clipping and resharding.
SETTINGS = dict(prompts_task="xlalign_v1.seahorse.en.prompts", task_feature_lengths=LENGTHS,
                batch_size=16, num_minibatches=2, ppo_epochs=2, reward_normalization="running",
                policy_optimizer=training.OptimizerConfig("adamw", 2e-3),
                value_optimizer=training.OptimizerConfig("adamw", 1e-3))


def _mesh(n):
  if n == len(jax.devices()):  # the CLI's mesh, so its runs reuse the compiled programs
    return partitioning.create_mesh(partitioning.MeshConfig())
  return Mesh(np.asarray(jax.devices()[:n]).reshape(n, 1), partitioning.MESH_AXES)


def _save_random_model(path, config, score_head, seed):
  """A checkpoint of random parameters with fan-in scaling (no init program to compile)."""
  rng = np.random.default_rng(seed)
  abstract = training.abstract_params(training.build_model(config, score_head), _mesh(1), RULES)[0]
  params = jax.tree.map(
      lambda s: (rng.normal(size=s.shape) / np.sqrt(s.shape[0]) if len(s.shape) > 1
                 else np.ones(s.shape)).astype(np.float32), abstract)
  checkpoints.save_params(str(path), params, config)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
  """The tiny world as data directory, random SFT and RM checkpoints."""
  if not SPM.exists():
    pytest.skip(f"shared test sentencepiece model not found at {SPM}")
  root = tmp_path_factory.mktemp("ppo")
  write_tiny_world(root / "world", SPM)
  _save_random_model(root / "sft", TINY, False, 0)
  _save_random_model(root / "rm", TINY, True, 1)
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(settings, "_explicit", {})
    xlalign_tasks.configure(data_dir=str(root / "world"))
    yield root


def _config(base, model_dir, **overrides):
  kwargs = dict(SETTINGS, model_dir=str(model_dir), train_steps=1, log_period=1,
                policy_checkpoint=str(base / "sft"), reward_checkpoint=str(base / "rm"),
                mesh_config=partitioning.MeshConfig())
  return ppo.PPOConfig(**dict(kwargs, **overrides))


def test_first_update_is_the_same_on_2_and_8_devices(base, tmp_path):
  two = ppo.run(_config(base, tmp_path / "two"), _mesh(2))
  eight = ppo.run(_config(base, tmp_path / "eight"), _mesh(8))
  assert two["policy_updated"] == 1 and two["policy_clip_fraction"] > 0
  np.testing.assert_allclose(two["reward"], eight["reward"], rtol=1e-5)
  initial = jax.tree.leaves(checkpoints.restore_params(
      str(base / "sft"), training.abstract_params(training.build_model(TINY), _mesh(1), RULES)[0]))
  # AdamW's first steps move each weight by about +-lr whatever the gradient's size, so a weight
  # whose gradient is near 0 can carry the reduction order's rounding into its step: allow 1% of
  # one step (lr 2e-3), far below the +-lr that a wrong update would show. (On one AMD EPYC the
  # 2- and 8-device runs differed by 7e-6 in one weight of 1,024.)
  for a, b, start in zip(jax.tree.leaves(two["params"]), jax.tree.leaves(eight["params"]), initial):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=2e-5)
    assert not np.allclose(a, start)


def test_a_value_head_started_at_zero_predicts_nothing_at_the_first_rollout(base, tmp_path):
  """value_init 'policy' builds the value model from the SFT checkpoint and a fresh head. With
  value_head_init 'zeros' every value of the first rollout is 0, so the values explain none of the
  returns' variance (exactly 0); the module's random head predicts noise."""
  def first_step(name, head_init):
    return ppo.run(_config(base, tmp_path / name, value_init="policy",
                           value_head_init=head_init), _mesh(8))
  assert first_step("zeros", "zeros")["explained_variance"] == 0.0
  assert first_step("random", "random")["explained_variance"] != 0.0
  for overrides, message in [
      (dict(value_head_init="zeros"),
       "PPOConfig.value_head_init 'zeros' needs value_init 'policy'"),
      (dict(value_init="policy", value_head_init="zeros",
            value_optimizer=training.OptimizerConfig("adafactor", 1e-3)),
       "PPOConfig.value_head_init 'zeros' needs AdamW"),
      (dict(value_init="policy", value_head_init="ones"),
       "PPOConfig.value_head_init 'ones' is not one of random, zeros")]:
    with pytest.raises(UserError, match=re.escape(message)):
      ppo.run(_config(base, tmp_path / "refused", **overrides), _mesh(8))


def test_reward_rises_while_kl_stays_bounded(base, tmp_path, capsys):
  steps = 100  # ~40 ms each; compiling is what costs
  config = _config(base, tmp_path / "run", train_steps=steps, max_kl=3.0)
  ppo.run(config, _mesh(2))
  log = capsys.readouterr().out
  metric = lambda name: np.array([float(x) for x in re.findall(rf" {name}=([-0-9.]+)", log)])
  rewards, kls, reward_std = metric("reward"), metric("kl"), metric("reward_std")
  assert len(rewards) == len(kls) == len(reward_std) == steps
  assert rewards[-20:].mean() > rewards[:20].mean() + 0.3, rewards.round(2).tolist()
  # The run maximises normalised reward - beta * KL, and the reference policy scores 0 on the KL
  # term, so a run that does not lose on its own objective keeps beta * KL below its gain in
  # normalised reward. (Which of the random RM's modes the policy finds, and so how far the KL
  # goes, turns on single sampled tokens: the first rounding difference changes it.)
  gain = (rewards[-20:].mean() - rewards[:5].mean()) / reward_std[:5].mean()
  late = kls[-20:].mean()
  assert config.kl_beta * late < gain, (late, gain, kls.round(2).tolist())
  assert late < 20, kls.round(2).tolist()  # 7-12 nats with the penalty, 26 without it
  # max_kl without stop_on_kl: reported once per stretch of steps above it, and the run goes on.
  above = metric("kl_exceeded")
  assert above.sum() > 0 and (above == (kls > 3.0)).all()
  stretches = int((np.diff(np.concatenate([[0], above])) == 1).sum())
  assert log.count("warning: KL to the reference is") == stretches
  assert f"above max_kl=3.0 on {int(above.sum())} of the {steps} steps run now" in log


def test_guards_stop_before_saving_and_name_the_last_good_checkpoint(base, tmp_path):
  model_dir = tmp_path / "guarded"
  ppo.run(_config(base, model_dir, train_steps=2, checkpoint_period=1), _mesh(2))
  resume = dict(train_steps=4, checkpoint_period=1)
  with pytest.raises(UserError, match=r"KL to the reference is [0-9.]+ at step 3, above max_kl=0.5 "
                     r"\(stop_on_kl\)\. Last good checkpoint: step 2 in .*guarded/checkpoints"):
    ppo.run(_config(base, model_dir, max_kl=0.5, stop_on_kl=True, **resume), _mesh(2))
  # A NaN in the reward model poisons the rewards, then the losses and gradients.
  poisoned = tmp_path / "rm_nan"
  shutil.copytree(base / "rm", poisoned)
  abstract = training.abstract_params(training.build_model(TINY, True), _mesh(1), RULES)[0]
  params = jax.tree.map(np.array, checkpoints.restore_params(str(poisoned), abstract))
  params["decoder"]["score_head"]["kernel"][0] = np.nan
  checkpoints.save_params(str(poisoned), params, TINY)
  # Resuming with another reward model is refused unless asked for on purpose (run_settings.json
  # deleted); max_kl and stop_on_kl above were guards, free to change.
  poisoned_resume = _config(base, model_dir, reward_checkpoint=str(poisoned), **resume)
  with pytest.raises(UserError, match=r"guarded holds a run at step 2 trained with "
                     r"reward_checkpoint='.*/rm' \(now '.*/rm_nan'\); resuming would mix two runs"):
    ppo.run(poisoned_resume, _mesh(2))
  (model_dir / loop.RUN_SETTINGS_FILE).unlink()
  with pytest.raises(UserError, match=r"reward is nan at step 3; stopped without saving it\. Last "
                     r"good checkpoint: step 2 in .*guarded/checkpoints"):
    ppo.run(poisoned_resume, _mesh(2))
  assert checkpoints.TrainCheckpointer(str(model_dir), TINY, 1, 3).manager.all_steps() == [1, 2]


def test_top_k_decoder_layers_update_only_the_top_and_the_lm_head():
  config = dataclasses.replace(TINY, num_decoder_layers=3)
  cfg = _config(pathlib.Path("unused"), "unused", train_top_k_decoder_layers=2)
  optimizer = ppo.policy_optimizer(cfg, config)
  abstract = training.abstract_params(training.build_model(config), _mesh(8), RULES)[0]
  training.opt_state_shardings(optimizer, abstract, _mesh(8))
  params = jax.tree.map(lambda s: np.ones(s.shape, np.float32), abstract)
  updates, _ = optimizer.update(jax.tree.map(np.ones_like, params), optimizer.init(params), params)
  changed = sorted({"/".join(k.key for k in path[:2]) for path, u in
                    jax.tree_util.tree_leaves_with_path(updates) if np.any(u != 0)})
  assert changed == ["decoder/layers_1", "decoder/layers_2", "decoder/logits_dense"]
  with pytest.raises(UserError, match="train_top_k_decoder_layers=4: the policy has 3 decoder"):
    ppo.policy_optimizer(dataclasses.replace(cfg, train_top_k_decoder_layers=4), config)


def test_adaptive_kl_beta_follows_the_proportional_controller_and_checks_its_settings(tmp_path):
  fixed = _config(tmp_path, tmp_path)
  assert ppo.adapt_kl_beta(0.1, 50.0, 3, fixed) == 0.1  # no kl_target: beta stays
  # Batch 16: at most 2% a step; none while the value model warms up alone (steps 0-2).
  adaptive = _config(tmp_path, tmp_path, kl_target=2.0, kl_horizon=160, policy_start_step=3)
  assert ppo.adapt_kl_beta(0.1, 2.0, 3, adaptive) == ppo.adapt_kl_beta(0.1, 0.0, 2, adaptive) == 0.1
  np.testing.assert_allclose(
      [ppo.adapt_kl_beta(0.1, kl, 3, adaptive) for kl in (2.2, 9.0, 1.8, 0.0)],
      [0.1 * 1.01, 0.1 * 1.02, 0.1 * 0.99, 0.1 * 0.98], rtol=1e-12)
  with pytest.raises(UserError, match="adaptive KL penalty needs kl_target, kl_horizon"):
    ppo.run(_config(tmp_path, tmp_path, kl_target=2.0, kl_horizon=0), _mesh(2))


def test_vocabulary_mismatch_names_both_checkpoints(base, tmp_path):
  _save_random_model(tmp_path / "rm256", dataclasses.replace(TINY, vocab_size=256), True, 0)
  with pytest.raises(UserError, match=r"policy .*sft has a vocabulary of 64 ids but the reward "
                     r"model .*rm256 has 256"):
    ppo.run(_config(base, tmp_path / "run", reward_checkpoint=str(tmp_path / "rm256")), _mesh(2))


# ---- SIGKILL and restart through the real CLI. ----

STEPS, PERIOD = 24, 4
KL_TARGET, KL_HORIZON = 1.0, 64  # beta moves by up to 5% per step of 16


def _env(base):
  # conftest's environment (XLA_FLAGS, XLALIGN_JAX_CACHE) and the tiny world
  return dict(os.environ, XLALIGN_DATA_DIR=str(base / "world"))


def _train_args(base, model_dir):
  """The experiment's command, with SETTINGS (so it runs the programs the tests compiled)."""
  return ["train", "--gin_file=gin_configs/experiments/ppo_tiny.gin",
          f"--gin.MODEL_DIR={model_dir}", f"--gin.POLICY_CHECKPOINT={base / 'sft'}",
          f"--gin.REWARD_CHECKPOINT={base / 'rm'}", f"--gin.TRAIN_STEPS={STEPS}",
          f"--gin.CHECKPOINT_PERIOD={PERIOD}", f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
          f"--gin.BATCH_SIZE={SETTINGS['batch_size']}", "--gin.POLICY_START_STEP=0",
          f"--gin.LEARNING_RATE={SETTINGS['policy_optimizer'].learning_rate}",
          f"--gin.VALUE_LEARNING_RATE={SETTINGS['value_optimizer'].learning_rate}",
          "--gin.VALUE_WARMUP_STEPS=0", f"--gin.PPOConfig.ppo_epochs={SETTINGS['ppo_epochs']}",
          f"--gin.PPOConfig.num_minibatches={SETTINGS['num_minibatches']}",
          # An adaptive KL penalty, so that resuming must also restore its coefficient.
          f"--gin.PPOConfig.kl_target={KL_TARGET}", f"--gin.PPOConfig.kl_horizon={KL_HORIZON}"]


def _score(model_dir, tmp_path):
  src, out = tmp_path / "in.jsonl", tmp_path / f"{model_dir.name}.jsonl"
  src.write_text("".join(json.dumps({"inputs": x, "targets": y}) + "\n" for x, y in
                         [("article 1 in en", "ref 1"), ("summary Yes", "article 0")]))
  assert cli.main(["score", "--checkpoint", str(model_dir), "--vocab", str(SPM), "--input",
                   str(src), "--output", str(out)]) == 0
  return out.read_text()


def _kill_at_first_checkpoint(proc, model_dir):
  deadline = time.time() + 300
  while not (model_dir / "checkpoints" / str(PERIOD)).is_dir():
    if proc.poll() is not None or time.time() > deadline:
      return
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)


def test_killed_and_restarted_run_equals_uninterrupted(base, tmp_path, capsys):
  killed = tmp_path / "killed"
  proc = subprocess.Popen([sys.executable, "-m", "xlalign_jax.cli", *_train_args(base, killed)],
                          cwd=REPO, env=_env(base), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  killer = threading.Thread(target=_kill_at_first_checkpoint, args=(proc, killed))
  killer.start()
  # Meanwhile the uninterrupted run, in this process (same devices, same compiled programs).
  full = tmp_path / "full"
  assert cli.main(_train_args(base, full)) == 0
  killer.join()
  assert proc.wait() == -signal.SIGKILL, "run ended before its first checkpoint"
  steps_at_kill = checkpoints.TrainCheckpointer(str(killed), TINY, PERIOD, 3).manager.all_steps()
  assert STEPS not in steps_at_kill, "killed too late to test resumption"
  # The same command again (here, not in a third process: its startup costs more than the run).
  capsys.readouterr()
  assert cli.main(_train_args(base, killed)) == 0
  assert "resuming from checkpoint step" in capsys.readouterr().out

  abstract = training.abstract_params(training.build_model(TINY), _mesh(1), RULES)[0]
  for a, b in zip(jax.tree.leaves(checkpoints.restore_params(str(full), abstract)),
                  jax.tree.leaves(checkpoints.restore_params(str(killed), abstract))):
    np.testing.assert_array_equal(a, b)
  assert not checkpoints.has_param(str(full), HEAD)  # `params` is the policy, not the value model
  # Each step penalised its KL with the beta that the controller made of the steps before it.
  scalars = run_history.read_scalars(str(full / "tensorboard"))
  kl, beta = (np.array([scalars[m][s] for s in range(1, STEPS + 1)]) for m in ("kl", "kl_beta"))
  error = np.clip(kl / KL_TARGET - 1, -0.2, 0.2)
  batch = SETTINGS["batch_size"]
  expected = 0.1 * np.cumprod(np.concatenate([[1.0], 1 + error[:-1] * batch / KL_HORIZON]))
  np.testing.assert_allclose(beta, expected, rtol=1e-6)
  assert abs(beta[-1] - 0.1) > 0.05  # it did move (up: this run's KL passes 1 nat early)
  assert _score(full, tmp_path) == _score(killed, tmp_path)
