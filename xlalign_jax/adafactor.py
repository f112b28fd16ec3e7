"""Adafactor as `optax.adafactor` computes it, with its factored means fast on XLA:CPU.

`optax.adafactor` keeps, for each large matrix, the means of the squared gradient over its rows
and over its columns. One of the two is a mean over a leading axis, and XLA:CPU reduces over a
leading axis very slowly at mT5's shapes: in the mt5_small SFT step, that mean over the LM head
([512, 250112]) holds one of the two cores for 0.64 s while the LM head's input-gradient matmul
runs on the other (`bench/RESULTS.md`, session 17). Here a mean over any axis but the last is a
matrix-vector product with a constant vector, which XLA:CPU runs at memory speed: the step is ~3%
faster. Everything else, the state included, is optax's: the same transforms in the same order,
the same `optax.FactoredState`, so checkpoints written with either read with the other, and the
updates agree to float32 rounding (`tests/test_adafactor.py`).
"""
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

# optax.adafactor's defaults, which this project uses unchanged.
DECAY_RATE = 0.8
MIN_DIM_SIZE_TO_FACTOR = 128
EPSILON = 1e-30
CLIPPING_THRESHOLD = 1.0


def factored_dims(shape: Tuple[int, ...]) -> Optional[Tuple[int, int]]:
  """(second largest axis, largest axis) when both are large enough to factor, else None: the
  rule of optax's `scale_by_factored_rms`."""
  if len(shape) < 2:
    return None
  order = np.argsort(shape)
  if shape[order[-2]] < MIN_DIM_SIZE_TO_FACTOR:
    return None
  return int(order[-2]), int(order[-1])


def mean_over_axis(x: jax.Array, axis: int) -> jax.Array:
  """`jnp.mean(x, axis)`, as a product with a vector of 1/n unless `axis` is the last one."""
  if axis == x.ndim - 1:
    return jnp.mean(x, axis=axis)
  weights = jnp.full((x.shape[axis],), 1.0 / x.shape[axis], x.dtype)
  return jnp.tensordot(weights, x, axes=((0,), (axis,)), precision=jax.lax.Precision.HIGHEST)


def scale_by_factored_rms() -> optax.GradientTransformation:
  """`optax.scale_by_factored_rms()` with its defaults, its state and its arithmetic."""
  reference = optax.scale_by_factored_rms(
      decay_rate=DECAY_RATE, min_dim_size_to_factor=MIN_DIM_SIZE_TO_FACTOR, epsilon=EPSILON)

  def update_fn(grads, state, params=None):
    del params
    step = jnp.asarray(state.count + 1, jnp.float32)
    decay = 1.0 - step ** (-DECAY_RATE)

    def one(grad, v_row, v_col, v):
      grad_sqr = grad * grad + EPSILON
      dims = factored_dims(grad.shape)
      if dims is None:
        new_v = decay * v + (1.0 - decay) * grad_sqr
        return grad * new_v ** -0.5, v_row, v_col, new_v
      d1, d0 = dims
      new_v_row = decay * v_row + (1.0 - decay) * mean_over_axis(grad_sqr, d0)
      new_v_col = decay * v_col + (1.0 - decay) * mean_over_axis(grad_sqr, d1)
      row_axis = d1 - 1 if d1 > d0 else d1  # d1's position in v_row, which lacks d0
      row_factor = (new_v_row / jnp.mean(new_v_row, axis=row_axis, keepdims=True)) ** -0.5
      col_factor = new_v_col ** -0.5
      update = grad * jnp.expand_dims(row_factor, d0) * jnp.expand_dims(col_factor, d1)
      return update, new_v_row, new_v_col, v

    results = jax.tree.map(one, grads, state.v_row, state.v_col, state.v)
    part = lambda i: jax.tree.map(lambda r: r[i], results, is_leaf=lambda r: isinstance(r, tuple))
    new_state = optax.FactoredState(count=optax.safe_increment(state.count), v_row=part(1),
                                    v_col=part(2), v=part(3))
    return part(0), new_state

  return optax.GradientTransformation(reference.init, update_fn)


def adafactor(learning_rate: optax.ScalarOrSchedule,
              weight_decay_rate: Optional[float] = None) -> optax.GradientTransformation:
  """`optax.adafactor(learning_rate, weight_decay_rate=weight_decay_rate)`."""
  chain = [scale_by_factored_rms(), optax.clip_by_block_rms(CLIPPING_THRESHOLD),
           optax.scale_by_learning_rate(learning_rate, flip_sign=False),
           optax.scale_by_param_block_rms()]
  if weight_decay_rate is not None:
    chain.append(optax.add_decayed_weights(weight_decay_rate))
  chain.append(optax.scale(-1))
  return optax.chain(*chain)
