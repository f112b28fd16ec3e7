"""Checkpoints under a relative path, as `xlalign demo` writes them by default (workdir/demo):
orbax's tensorstore layer refuses relative paths, so the package makes them absolute itself."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from xlalign_jax import checkpoints
from xlalign_jax.config import ModelConfig


def test_a_relative_model_dir_saves_resolves_and_restores(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  config = ModelConfig(vocab_size=64, emb_dim=8, num_heads=1, head_dim=8, mlp_dim=16)
  params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}
  optimizer = optax.adam(1e-3)
  opt_state = optimizer.init(params)
  ckpt = checkpoints.TrainCheckpointer("runs/model", config, period=1, keep=2)
  ckpt.save(1, params, opt_state, {"data_batches_consumed": 1})
  ckpt.wait()
  step_dir = checkpoints.resolve("runs/model")
  assert step_dir == tmp_path / "runs" / "model" / "checkpoints" / "1"
  assert checkpoints.load_model_config("runs/model") == config

  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = lambda tree: jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
  restored, restored_opt, meta = checkpoints.TrainCheckpointer(
      "runs/model", config, period=1, keep=2).restore(1, abstract(params), abstract(opt_state))
  assert meta["data_batches_consumed"] == 1 and meta["step"] == 1
  for got, want in zip(jax.tree.leaves((restored, restored_opt)),
                       jax.tree.leaves((params, opt_state))):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  np.testing.assert_array_equal(
      np.asarray(checkpoints.restore_params("runs/model", abstract(params))["w"]),
      np.arange(6.0).reshape(2, 3))
