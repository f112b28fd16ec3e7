"""The analytic FLOP counter of bench/flops.py (model FLOP utilisation in bench/run.py) agrees with
XLA's own count of the compiled forward and backward passes (within 5%)."""
import pathlib
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bench import flops  # noqa: E402
from xlalign_jax import training  # noqa: E402
from xlalign_jax.config import ModelConfig  # noqa: E402

TINY = ModelConfig()  # mt5_tiny dimensions
# Unlike tiny everywhere a formula could be wrong: layer counts, heads x head_dim != d_model,
# an ungated MLP, a vocabulary that dominates.
ODD = ModelConfig(vocab_size=3000, emb_dim=96, num_heads=3, head_dim=40, num_encoder_layers=3,
                  num_decoder_layers=1, mlp_dim=200, mlp_activations=("relu",))


def _xla_flops(fn, model, batch, enc_len, dec_len, dec_rows=1):
  params = nn.unbox(jax.eval_shape(training.model_init_fn(model), jax.random.PRNGKey(0)))
  enc = jax.ShapeDtypeStruct((batch, enc_len), jnp.int32)
  dec = jax.ShapeDtypeStruct((batch * dec_rows, dec_len), jnp.int32)
  got = flops.xla_flops(jax.jit(fn).lower(params, enc, dec, dec).compile())
  if got is None:
    pytest.skip("XLA's cost_analysis gives no flops on this backend")
  return got


def _forward(model):
  return lambda p, e, d, t: model.apply({"params": p}, e, d, t)


@pytest.mark.parametrize("config", [TINY, ODD], ids=["tiny", "odd"])
def test_forward_matches_xla(config):
  model = training.build_model(config)
  got = _xla_flops(_forward(model), model, 4, 96, 32)
  want = flops.forward(config, 4, 96, 32)
  assert got == pytest.approx(want, rel=0.05)


def test_score_head_train_step_matches_xla():
  """Forward + backward of a reward model, two decoder rows per input: 3x the forward."""
  model = training.build_model(ODD, score_head=True)
  fwd = _forward(model)
  # Squared, so the gradient is not a constant XLA could fold the backward matmuls into.
  grad = lambda p, e, d, t: jax.grad(lambda q: jnp.sum(fwd(q, e, d, t) ** 2))(p)
  got = _xla_flops(grad, model, 4, 64, 16, dec_rows=2)
  want = flops.train_step(ODD, 4, 64, 16, dec_rows_per_input=2, score_head=True)
  assert got == pytest.approx(want, rel=0.05)
