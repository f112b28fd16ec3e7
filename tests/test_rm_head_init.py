"""An RM's score head started at zero (`LoopConfig.new_params_init = "zeros"`): its first reward is
0 for every response, so the first AdamW step moves only the head, each element by the learning
rate, and leaves the SFT backbone exactly as it was."""
import jax
import numpy as np
import pytest
from flax import traverse_util

from tiny_world import use_data_dir, world  # pylint: disable=unused-import
from xlalign_jax import checkpoints, errors, partitioning, training

LR = 0.01
HEAD = "decoder/score_head/kernel"


def _one_step(sft_dir, out, new_params_init, optimizer="adamw"):
  from xlalign_jax.trainers import loop, reward
  config = loop.LoopConfig(
      model_dir=str(out), train_steps=1, mixture_or_task_name="xlalign_v1.seahorse.en.rm",
      task_feature_lengths={"inputs": 16, "targets": 8},
      model_config=checkpoints.load_model_config(str(sft_dir)),
      mesh_config=partitioning.MeshConfig(),
      optimizer_config=training.OptimizerConfig(optimizer, LR), batch_size=8, eval_examples=8,
      initial_checkpoint_path=str(sft_dir), new_params_init=new_params_init)
  params = reward.train(config)["params"]
  return traverse_util.flatten_dict(jax.device_get(params), sep="/")


def _sft_params(sft_dir):
  mesh = partitioning.create_mesh(partitioning.MeshConfig())
  model = training.build_model(checkpoints.load_model_config(str(sft_dir)))
  abstract, _ = training.abstract_params(model, mesh, partitioning.DATA_PARALLEL_RULES)
  return traverse_util.flatten_dict(
      jax.device_get(checkpoints.restore_params(str(sft_dir), abstract)), sep="/")


def test_a_zero_head_moves_alone_by_the_learning_rate(world, small_checkpoint, monkeypatch,
                                                      tmp_path):
  use_data_dir(world, monkeypatch)
  sft = _sft_params(small_checkpoint)
  zero = _one_step(small_checkpoint, tmp_path / "zeros", "zeros")
  # Adam's first step is lr * g / (|g| + eps): the learning rate, in the gradient's direction.
  np.testing.assert_allclose(np.abs(zero[HEAD]), LR, rtol=1e-4)
  backbone = set(zero) & set(sft)
  assert set(zero) - backbone == {HEAD}
  for name in backbone:
    np.testing.assert_array_equal(zero[name], sft[name], err_msg=name)

  # The module's own initialisation: the head starts away from 0 and the backbone moves at once.
  rand = _one_step(small_checkpoint, tmp_path / "random", "random")
  assert np.abs(np.abs(rand[HEAD]) - LR).max() > 10 * LR
  assert any(not np.array_equal(rand[name], sft[name]) for name in backbone)


def test_a_zero_head_under_adafactor_or_an_unknown_init_is_refused(tmp_path, small_checkpoint):
  with pytest.raises(errors.UserError, match="'zeros' needs AdamW"):
    _one_step(small_checkpoint, tmp_path / "a", "zeros", optimizer="adafactor")
  with pytest.raises(errors.UserError,
                     match="LoopConfig.new_params_init 'ones' is not one of random, zeros"):
    _one_step(small_checkpoint, tmp_path / "b", "ones")
  assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_new_head_over_a_checkpoint_gets_the_full_inits_values(small_checkpoint):
  """Only the new head is initialised (the rest of the init program is dropped): its values are
  those of the whole model's init with the same seed, and the backbone is the checkpoint's."""
  from xlalign_jax.trainers import reward
  mesh = partitioning.create_mesh(partitioning.MeshConfig())
  rules = partitioning.DATA_PARALLEL_RULES
  model = training.build_model(checkpoints.load_model_config(str(small_checkpoint)),
                               score_head=True)
  abstract, _ = training.abstract_params(model, mesh, rules)
  full, _ = partitioning.sharded_init(training.model_init_fn(model), jax.random.PRNGKey(3), mesh,
                                      rules)
  full = traverse_util.flatten_dict(jax.device_get(full), sep="/")
  params = traverse_util.flatten_dict(jax.device_get(training.initial_params(
      model, 3, mesh, rules, abstract, str(small_checkpoint), (reward.HEAD,))), sep="/")
  sft = _sft_params(small_checkpoint)
  assert set(params) == set(full)
  np.testing.assert_array_equal(params[HEAD], full[HEAD])
  assert np.abs(params[HEAD]).max() > 0
  for name in set(params) - {HEAD}:
    np.testing.assert_array_equal(params[name], sft[name], err_msg=name)
