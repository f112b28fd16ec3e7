"""xlalign_jax.adafactor against optax.adafactor: same state, same parameters over several steps."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from xlalign_jax import adafactor

# Shapes that exercise each branch: factored with the larger axis first or last, a 3-D kernel
# factored over its two last axes and over its first and last, a matrix too small to factor, a
# vector, a scalar.
SHAPES = {"wide": (130, 300), "tall": (300, 130), "heads": (4, 130, 200), "rows": (150, 3, 140),
          "small": (5, 200), "bias": (64,), "scalar": ()}


def _params(seed):
  keys = jax.random.split(jax.random.PRNGKey(seed), len(SHAPES))
  return {name: jax.random.normal(k, shape) * (1.0 + i)
          for i, ((name, shape), k) in enumerate(zip(SHAPES.items(), keys))}


def _run(optimizer, steps=4):
  params = _params(0)
  state = optimizer.init(params)
  update = jax.jit(optimizer.update)
  for step in range(steps):
    grads = jax.tree.map(lambda p, s=step: p * 0.1 + 0.01 * (s + 1), _params(step + 1))
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_matches_optax_over_steps(weight_decay):
  schedule = optax.linear_schedule(0.0, 1e-2, 3)  # a schedule, as a warm-up passes it
  ours, ours_state = _run(adafactor.adafactor(schedule, weight_decay_rate=weight_decay))
  ref, ref_state = _run(optax.adafactor(schedule, weight_decay_rate=weight_decay))
  assert jax.tree.structure(ours_state) == jax.tree.structure(ref_state)
  for name in SHAPES:
    np.testing.assert_allclose(ours[name], ref[name], rtol=2e-5, atol=1e-6, err_msg=name)
  for a, b in zip(jax.tree.leaves(ours_state), jax.tree.leaves(ref_state)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-30)
  assert not np.allclose(ours["wide"], _params(0)["wide"])  # the parameters did move


def test_mean_over_axis_matches_numpy():
  x = np.random.default_rng(0).normal(size=(6, 7, 8)).astype(np.float32)
  for axis in range(3):
    np.testing.assert_allclose(adafactor.mean_over_axis(jnp.asarray(x), axis), x.mean(axis),
                               rtol=1e-5, atol=1e-7)


def test_factored_dims_follow_optax():
  assert adafactor.factored_dims((130, 300)) == (0, 1)
  assert adafactor.factored_dims((300, 130)) == (1, 0)
  assert adafactor.factored_dims((150, 3, 140)) == (2, 0)
  assert adafactor.factored_dims((5, 200)) is None
  assert adafactor.factored_dims((64,)) is None
