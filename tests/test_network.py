"""The mT5 network: T5X parameter names, public parameter counts, and sharding on 8 fake devices."""
import pathlib

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from xlalign_jax import gin_utils, layers, losses, partitioning, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.network import Transformer

TINY = ModelConfig(vocab_size=128, emb_dim=16, num_heads=2, head_dim=8, num_encoder_layers=2,
                   num_decoder_layers=2, mlp_dim=32)
GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin_configs"


def _flat_shapes(tree):
  tree = nn.unbox(tree)
  return {"/".join(k.key for k in path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _model_config(name: str) -> ModelConfig:
  gin.clear_config()
  gin_utils.parse([str(GIN_DIR / "models" / f"{name}.gin")], [])
  config = ModelConfig()
  gin.clear_config()
  return config


def _expected_param_count(c: ModelConfig) -> int:
  """Closed form of the T5 v1.1 parameter count (gated MLP, untied logits)."""
  attn = 4 * c.emb_dim * c.num_heads * c.head_dim
  mlp = 3 * c.emb_dim * c.mlp_dim
  encoder = c.num_encoder_layers * (attn + mlp + 2 * c.emb_dim) + c.emb_dim
  decoder = c.num_decoder_layers * (2 * attn + mlp + 3 * c.emb_dim) + c.emb_dim
  relpos = 2 * c.num_heads * c.relative_attention_num_buckets
  return 2 * c.vocab_size * c.emb_dim + encoder + decoder + relpos


def test_parameter_names_and_shapes_follow_t5x():
  shapes = _flat_shapes(jax.eval_shape(training.model_init_fn(Transformer(TINY)),
                                       jax.random.PRNGKey(0)))
  assert shapes["token_embedder/embedding"] == (128, 16)
  assert shapes["encoder/relpos_bias/rel_embedding"] == (2, 32)
  assert shapes["decoder/relpos_bias/rel_embedding"] == (2, 32)
  assert shapes["encoder/layers_0/attention/query/kernel"] == (16, 16)
  assert shapes["encoder/layers_1/attention/out/kernel"] == (16, 16)
  assert shapes["encoder/layers_0/pre_attention_layer_norm/scale"] == (16,)
  assert shapes["encoder/layers_0/mlp/wi_0/kernel"] == (16, 32)
  assert shapes["encoder/layers_0/mlp/wi_1/kernel"] == (16, 32)
  assert shapes["encoder/layers_0/mlp/wo/kernel"] == (32, 16)
  assert shapes["encoder/encoder_norm/scale"] == (16,)
  for sub in ("self_attention", "encoder_decoder_attention"):
    for proj in ("query", "key", "value"):
      assert shapes[f"decoder/layers_1/{sub}/{proj}/kernel"] == (16, 16)
  for norm in ("pre_self_attention_layer_norm", "pre_cross_attention_layer_norm",
               "pre_mlp_layer_norm"):
    assert shapes[f"decoder/layers_0/{norm}/scale"] == (16,)
  assert shapes["decoder/decoder_norm/scale"] == (16,)
  assert shapes["decoder/logits_dense/kernel"] == (16, 128)
  # embedding, 2 relpos, 2 final norms, logits; 9 per encoder layer, 14 per decoder layer
  assert len(shapes) == 6 + 2 * 9 + 2 * 14


@pytest.mark.parametrize("name,approx", [
    ("mt5_tiny", 1.8e6), ("mt5_small", 300e6), ("mt5_base", 580e6), ("mt5_large", 1.2e9),
    ("mt5_xl", 3.7e9), ("mt5_xxl", 13e9)])
def test_model_gin_parameter_counts(name, approx):
  config = _model_config(name)
  shapes = jax.eval_shape(training.model_init_fn(Transformer(config)), jax.random.PRNGKey(0))
  count = training.count_params(shapes)
  assert count == _expected_param_count(config)
  assert abs(count - approx) / approx < 0.1, f"{name}: {count:,}"


def test_encoder_padding_does_not_change_outputs():
  model = Transformer(TINY)
  params = jax.jit(lambda r: nn.unbox(model.init(
      r, *training.dummy_batch(6, 5))["params"]))(jax.random.PRNGKey(0))
  enc = jnp.array([[5, 6, 7, 1, 0, 0]])
  dec_tgt = jnp.array([[8, 9, 1, 0, 0]])
  dec_in = jnp.array([[0, 8, 9, 1, 0]])
  out = model.apply({"params": params}, enc, dec_in, dec_tgt)
  assert out.shape == (1, 5, 128)
  enc_longer = jnp.array([[5, 6, 7, 1, 0, 0, 0, 0]])
  out2 = model.apply({"params": params}, enc_longer, dec_in, dec_tgt)
  np.testing.assert_allclose(out[0, :3], out2[0, :3], atol=1e-5)


def _loss_on_mesh(mesh, rules, params_host, batch):
  model = Transformer(TINY)
  abstract, shardings = training.abstract_params(model, mesh, rules)
  params = jax.device_put(params_host, shardings)
  batch_sh = {k: partitioning.batch_sharding(mesh, rules, v.ndim) for k, v in batch.items()}

  def loss(p, b):
    logits = model.apply({"params": p}, b["enc"], b["dec_in"], b["dec_tgt"])
    s, w = losses.cross_entropy_loss(logits, b["dec_tgt"], (b["dec_tgt"] > 0).astype(jnp.float32))
    return s / w

  with partitioning.activate(mesh, rules):
    value, grads = jax.jit(jax.value_and_grad(loss), in_shardings=(shardings, batch_sh))(
        params, partitioning.shard_batch(batch, mesh, rules))
  return float(value), grads, params


FSDP_TENSOR_RULES = (("batch", "data"), ("embed", "data"), ("vocab", "model"), ("mlp", "model"),
                     ("heads", "model"), ("joined_kv", "model"))


def test_4x2_mesh_gives_the_same_loss_and_gradients_as_one_device():
  assert jax.device_count() == 8
  rng = np.random.default_rng(0)
  batch = {"enc": rng.integers(2, 128, (8, 12)).astype(np.int32),
           "dec_tgt": rng.integers(2, 128, (8, 6)).astype(np.int32)}
  batch["enc"][:, 9:] = 0
  batch["dec_tgt"][:4, 4:] = 0
  batch["dec_in"] = np.concatenate([np.zeros((8, 1), np.int32), batch["dec_tgt"][:, :-1]], 1)
  params_host = jax.device_get(jax.jit(lambda r: nn.unbox(
      training.model_init_fn(Transformer(TINY))(r)))(jax.random.PRNGKey(1)))

  one = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), partitioning.MESH_AXES)
  loss1, grads1, _ = _loss_on_mesh(one, partitioning.DATA_PARALLEL_RULES, params_host, batch)
  mesh = partitioning.create_mesh(partitioning.MeshConfig(data=4, model=2))
  loss8, grads8, params8 = _loss_on_mesh(mesh, FSDP_TENSOR_RULES, params_host, batch)
  assert loss1 == pytest.approx(loss8, rel=1e-5)
  for g1, g8 in zip(jax.tree.leaves(grads1), jax.tree.leaves(grads8)):
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g8), rtol=1e-4, atol=1e-6)

  # Large kernels really are split over the mesh.
  assert partitioning.unsharded_large_params(params8, min_size=256) == []
  query = params8["encoder"]["layers_0"]["attention"]["query"]["kernel"]
  assert query.sharding.spec == jax.sharding.PartitionSpec("data", "model")
  assert query.addressable_shards[0].data.shape == (16 // 4, 16 // 2)
  # Replicated (data-parallel) parameters are reported as unsharded.
  dp_params = jax.device_put(params_host, training.abstract_params(
      Transformer(TINY), mesh, partitioning.DATA_PARALLEL_RULES)[1])
  assert "['token_embedder']['embedding']" in partitioning.unsharded_large_params(dp_params, 256)


def test_mesh_that_does_not_fit_is_a_clear_error():
  from xlalign_jax.errors import UserError
  with pytest.raises(UserError, match="does not fit 8 device"):
    partitioning.create_mesh(partitioning.MeshConfig(data=-1, model=3))
  mesh = partitioning.create_mesh(partitioning.MeshConfig(data=4, model=2))
  with pytest.raises(UserError, match="batch size 6 is not divisible by the 4"):
    partitioning.check_batch_size(6, mesh, partitioning.DATA_PARALLEL_RULES)


def test_shared_bias_add_has_the_broadcasting_gradients():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 2, 5, 4)).astype(np.float32)
  bias = rng.normal(size=(1, 2, 5, 4)).astype(np.float32)
  weights = rng.normal(size=(3, 2, 5, 4)).astype(np.float32)
  f = lambda l, b: jnp.sum(jnp.asarray(weights) * layers.add_shared_bias(l, b) ** 2)
  value, (d_logits, d_bias) = jax.value_and_grad(f, argnums=(0, 1))(logits, bias)
  # NumPy: d/dx sum(w * x^2) = 2 w x, and the shared bias collects its rows' gradients.
  out = logits + bias
  np.testing.assert_allclose(value, np.sum(weights * out ** 2), rtol=1e-5)
  np.testing.assert_allclose(d_logits, 2 * weights * out, rtol=1e-5)
  np.testing.assert_allclose(d_bias, np.sum(2 * weights * out, axis=0, keepdims=True), rtol=1e-5)


def test_projection_has_the_matmul_gradients():
  """`layers.project` writes its own backward pass (a faster form of the kernel gradient): it must
  be the gradient of x @ kernel, for inputs with leading batch and length axes, also under jit and
  sharded over a data axis."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 5, 6)).astype(np.float32)
  kernel = rng.normal(size=(6, 7)).astype(np.float32)
  weights = rng.normal(size=(8, 5, 7)).astype(np.float32)
  f = lambda x, k: jnp.sum(jnp.asarray(weights) * layers.project(x, k) ** 2)
  mesh = partitioning.create_mesh(partitioning.MeshConfig())
  x_sharded = jax.device_put(x, partitioning.batch_sharding(mesh, partitioning.DATA_PARALLEL_RULES,
                                                            3))
  # NumPy: for y = x @ k and L = sum(w * y^2), dL/dy = 2 w y, dL/dx = dL/dy k^T, dL/dk = x^T dL/dy.
  y = x @ kernel
  d_y = 2 * weights * y
  for fn, inputs in ((jax.value_and_grad(f, argnums=(0, 1)), x),
                     (jax.jit(jax.value_and_grad(f, argnums=(0, 1))), x_sharded)):
    value, (d_x, d_kernel) = fn(inputs, kernel)
    np.testing.assert_allclose(value, np.sum(weights * y ** 2), rtol=1e-5)
    np.testing.assert_allclose(d_x, d_y @ kernel.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_kernel, x.reshape(-1, 6).T @ d_y.reshape(-1, 7), rtol=1e-4,
                               atol=1e-4)
