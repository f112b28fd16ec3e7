"""Building blocks of the mT5 / T5 v1.1 network in flax.linen, with T5X parameter names and layouts.

Every parameter is annotated with logical axis names; `partitioning.py` maps them to mesh axes.
Kernels are stored 2-D as T5X stores them (e.g. query `[embed, heads*head_dim]`), so T5X and Hugging
Face checkpoints map onto the tree by name alone.
"""
import functools
from typing import Callable, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Initializer = Callable[..., Array]

default_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def constrain(x: Array, axes: Tuple[Optional[str], ...]) -> Array:
  """Sharding constraint by logical axis names; a no-op outside a mesh / rules context."""
  return nn.with_logical_constraint(x, axes)


def _activation(name: str) -> Callable[[Array], Array]:
  if name == "linear":
    return lambda x: x
  if name == "gelu":  # tanh approximation, as T5X (flax default) and HF's gelu_new
    return functools.partial(nn.gelu, approximate=True)
  if name == "relu":
    return nn.relu
  raise ValueError(f"unknown MLP activation {name!r} (expected gelu, relu or linear)")


def _kernel_param(module: nn.Module, shape: Tuple[int, int], axes: Tuple[str, str],
                  init: Initializer) -> Array:
  """A projection's float32 `kernel` parameter with its logical axes, as T5X stores it."""
  return module.param("kernel", nn.with_logical_partitioning(init, axes), shape, jnp.float32)


class Dense(nn.Module):
  """A bias-free projection with a 2-D kernel `[prod(in dims), prod(features)]`, as T5X stores it.

  Contracts the trailing `len(in_shape)` dimensions of the input and produces `features` dimensions.
  """
  features: Tuple[int, ...]
  kernel_axes: Tuple[str, str]
  num_in_dims: int = 1
  dtype: jnp.dtype = jnp.float32
  kernel_init: Initializer = default_kernel_init

  @nn.compact
  def __call__(self, x: Array) -> Array:
    in_shape = x.shape[-self.num_in_dims:]
    kernel = _kernel_param(self, (int(np.prod(in_shape)), int(np.prod(self.features))),
                           self.kernel_axes, self.kernel_init)
    kernel = jnp.asarray(kernel, self.dtype)
    x = jnp.asarray(x, self.dtype).reshape(x.shape[:-self.num_in_dims] + (-1,))
    # The hand-written backward pass works around XLA:CPU; elsewhere autodiff's own form stays.
    y = (project if jax.default_backend() == "cpu" else jnp.dot)(x, kernel)
    return y.reshape(y.shape[:-1] + tuple(self.features))


@jax.custom_vjp
def project(x: Array, kernel: Array) -> Array:
  """`x @ kernel` (x f[..., in], kernel f[in, out]), whose kernel gradient is an explicit
  matmul of x transposed: left to autodiff, XLA:CPU contracted the tokens axis of both operands in
  place and, for the mt5_small LM head (250,112 outputs), fell back to a generic dot that took 2.4
  s of a 7.0 s SFT step on a Sapphire Rapids CPU (the step now takes 5.2 s; bench/RESULTS.md)."""
  return jnp.dot(x, kernel)


def _project_fwd(x: Array, kernel: Array):
  return jnp.dot(x, kernel), (x, kernel)


def _project_bwd(residuals, g: Array):
  x, kernel = residuals
  x_t = x.reshape(-1, x.shape[-1]).T
  # The barrier keeps the transpose a real (small) copy instead of folding it back into the dot.
  d_kernel = jnp.dot(jax.lax.optimization_barrier(x_t), g.reshape(-1, g.shape[-1]))
  return jnp.dot(g, kernel.T), d_kernel


project.defvjp(_project_fwd, _project_bwd)


class Kernel(nn.Module):
  """The 2-D kernel `[in, out]` of a T5X projection (param `<name>/kernel`), returned unapplied so
  that sibling projections of one input can run as one matmul (`project_together`)."""
  shape: Tuple[int, int]
  kernel_axes: Tuple[str, str]
  kernel_init: Initializer = default_kernel_init

  @nn.compact
  def __call__(self) -> Array:
    return _kernel_param(self, self.shape, self.kernel_axes, self.kernel_init)


def project_together(x: Array, kernels: Sequence[Array], dtype) -> Tuple[Array, ...]:
  """`tuple(x @ k for k in kernels)` as one matmul over the stacked kernels: at small widths one
  larger GEMM runs faster than several small ones (forward and backward)."""
  stacked = jnp.stack([jnp.asarray(k, dtype) for k in kernels])
  y = jnp.einsum("...d,tdf->...tf", jnp.asarray(x, dtype), stacked)
  return tuple(y[..., i, :] for i in range(len(kernels)))


class RMSNorm(nn.Module):
  """T5 layer norm: scale only, no mean subtraction, variance in float32."""
  epsilon: float = 1e-6
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                       (x.shape[-1],), jnp.float32)
    x32 = jnp.asarray(x, jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.epsilon)
    return jnp.asarray(y, self.dtype) * jnp.asarray(scale, self.dtype)


class Embed(nn.Module):
  """Token embedding `[vocab, embed]` (T5X `token_embedder/embedding`)."""
  num_embeddings: int
  features: int
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    self.embedding = self.param(
        "embedding",
        nn.with_logical_partitioning(nn.initializers.normal(stddev=1.0), ("vocab", "embed")),
        (self.num_embeddings, self.features), jnp.float32)

  def __call__(self, ids: Array) -> Array:
    return jnp.take(jnp.asarray(self.embedding, self.dtype), ids, axis=0)

  def attend(self, x: Array) -> Array:
    return jnp.dot(x, jnp.asarray(self.embedding, self.dtype).T)


class MlpBlock(nn.Module):
  """Gated (wi_0 * wi_1) or plain (wi) feed-forward block, T5X names."""
  mlp_dim: int
  activations: Sequence[str] = ("gelu", "linear")
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    count = len(self.activations)
    names = ["wi"] if count == 1 else [f"wi_{i}" for i in range(count)]
    kernels = [Kernel((x.shape[-1], self.mlp_dim), ("embed", "mlp"), name=n)() for n in names]
    h = 1.0
    for act, y in zip(self.activations, project_together(x, kernels, self.dtype)):
      h = h * _activation(act)(y)
    h = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(h, deterministic=deterministic)
    h = constrain(h, ("batch", "length", "mlp"))
    return Dense((x.shape[-1],), ("mlp", "embed"), dtype=self.dtype, name="wo")(h)


def relative_position_bucket(relative_position: np.ndarray, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> np.ndarray:
  """T5's bucketing of (key - query) distances: exact for small, logarithmic up to max_distance."""
  ret = 0
  n = -relative_position
  if bidirectional:
    num_buckets //= 2
    ret += (n < 0).astype(np.int32) * num_buckets
    n = np.abs(n)
  else:
    n = np.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  val_if_large = max_exact + (
      np.log(n.astype(np.float32) / max_exact + np.finfo(np.float32).eps) /
      np.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(np.int32)
  val_if_large = np.minimum(val_if_large, num_buckets - 1)
  return ret + np.where(is_small, n, val_if_large)


class RelativePositionBiases(nn.Module):
  """Shared per-stack relative position bias (T5X `relpos_bias/rel_embedding`, [heads, buckets])."""
  num_buckets: int
  max_distance: int
  num_heads: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, qlen: int, klen: int, bidirectional: bool, query_offset: Array = 0) -> Array:
    """Returns `[1, heads, qlen, klen]` biases; `query_offset` shifts query positions (decoding)."""
    rel_embedding = self.param(
        "rel_embedding",
        nn.with_logical_partitioning(nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
                                     ("heads", "relpos_buckets")),
        (self.num_heads, self.num_buckets), jnp.float32)
    # Buckets for every distance a query at position q can see: distances -(q) .. klen-1-q.
    if isinstance(query_offset, int) and query_offset == 0:
      rel = np.arange(klen)[None, :] - np.arange(qlen)[:, None]
      buckets = jnp.asarray(relative_position_bucket(rel, bidirectional, self.num_buckets,
                                                     self.max_distance))
    else:  # traced offset while decoding: bucket a static table of all distances, then gather
      distances = np.arange(-(klen - 1), klen)
      table = jnp.asarray(relative_position_bucket(distances, bidirectional, self.num_buckets,
                                                   self.max_distance))
      rel = jnp.arange(klen)[None, :] - (jnp.arange(qlen)[:, None] + query_offset)
      buckets = table[rel + (klen - 1)]
    values = jnp.take(jnp.asarray(rel_embedding, self.dtype), buckets, axis=1)  # [heads, q, k]
    return values[None]


@jax.custom_vjp
def add_shared_bias(logits: Array, bias: Array) -> Array:
  """`logits [B, ...] + bias [1, ...]`, the bias shared by every row of the batch.

  Same value and gradients as the broadcasting add. Its backward sums the bias gradient over the
  batch as a matrix-vector product: XLA:CPU's reduce over a leading axis is ~50x slower at
  encoder shapes (12 ms vs 0.24 ms for [8, 4, 256, 256]), a fifth of a tiny model's train step.
  """
  return logits + bias


def _add_shared_bias_fwd(logits, bias):
  return logits + bias, None


def _add_shared_bias_bwd(_, g):
  rows = g.reshape(g.shape[0], -1)
  bias_grad = jnp.ones((1, rows.shape[0]), g.dtype) @ rows
  return g, bias_grad.reshape((1,) + g.shape[1:])


add_shared_bias.defvjp(_add_shared_bias_fwd, _add_shared_bias_bwd)


# The self-attention decode cache's keys and values are `[b, h, length, d]`; the sampler pads them
# along the length axis to grow the cache (`decoding.grow_cache`).
_CACHE_POSITION_AXIS = 2
SELF_ATTENTION_CACHE_AXES = {"cached_key": _CACHE_POSITION_AXIS,
                             "cached_value": _CACHE_POSITION_AXIS}


def heads_major(key: Array, value: Array) -> Tuple[Array, Array]:
  """`[b, k, h, d]` keys and values -> `[b, h, d, k]` keys and `[b, h, k, d]` values: the layouts
  the attention matmuls read, and the cross-attention cache's, so decoding steps copy no cache."""
  return key.transpose(0, 2, 3, 1), value.transpose(0, 2, 1, 3)


class MultiHeadDotProductAttention(nn.Module):
  """Multi-head attention, T5 style: no 1/sqrt(d) scaling at run time (folded into the query init).

  Self-attention when `inputs_kv` is None (queries, keys and values in one matmul), else
  cross-attention to `inputs_kv` (keys and values in one matmul). With `decode=True` the module
  keeps a key/value cache in the 'cache' collection: self-attention appends one position per call;
  cross-attention projects the encoder outputs once (on the call that creates the cache) and
  reuses them, grouping `n` samples per encoded input.
  """
  num_heads: int
  head_dim: int
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs_q: Array, inputs_kv: Optional[Array], mask: Optional[Array],
               bias: Optional[Array], deterministic: bool, decode: bool = False) -> Array:
    features = (self.num_heads, self.head_dim)
    depth_scaling = self.head_dim ** -0.5

    def query_init(*args):
      return default_kernel_init(*args) * depth_scaling

    def kernel(name, inputs, init=default_kernel_init):
      shape = (inputs.shape[-1], self.num_heads * self.head_dim)
      return Kernel(shape, ("embed", "joined_kv"), init, name=name)()

    split_heads = lambda y: y.reshape(y.shape[:-1] + features)
    keys_by_position = False  # keys [b, h, d, k]; the self-attention cache's are [b, h, k, d]
    if inputs_kv is None:
      kernels = [kernel("query", inputs_q, query_init), kernel("key", inputs_q),
                 kernel("value", inputs_q)]
      query, key, value = project_together(inputs_q, kernels, self.dtype)
      key, value = heads_major(split_heads(key), split_heads(value))
      if decode:
        key, value, mask = self._append_to_cache(key, value, mask)
        keys_by_position = True
    else:
      query, = project_together(inputs_q, [kernel("query", inputs_q, query_init)], self.dtype)
      kv_proj = lambda: map(split_heads, project_together(
          inputs_kv, [kernel("key", inputs_kv), kernel("value", inputs_kv)], self.dtype))
      key, value = self._cached_cross_kv(kv_proj) if decode else heads_major(*kv_proj())
    query = split_heads(query)
    query = constrain(query, ("batch", "length", "heads", "kv"))
    key = constrain(key, ("batch", "heads", "length", "kv") if keys_by_position
                    else ("batch", "heads", "kv", "length"))
    value = constrain(value, ("batch", "heads", "length", "kv"))

    # Queries may carry n samples per key/value row (decoding reuses one encoder pass).
    b_kv = key.shape[0]
    n = query.shape[0] // b_kv
    q = query.reshape((b_kv, n) + query.shape[1:])
    logits = jnp.einsum("bnqhd,bhkd->bnhqk" if keys_by_position else "bnqhd,bhdk->bnhqk",
                        q.astype(jnp.float32), key.astype(jnp.float32))
    logits = logits.reshape((query.shape[0],) + logits.shape[2:])
    if bias is not None:
      logits = add_shared_bias(logits, bias.astype(jnp.float32))
    if mask is not None:
      logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.dropout_rate)(weights, deterministic=deterministic)
    weights = weights.reshape((b_kv, n) + weights.shape[1:])
    out = jnp.einsum("bnhqk,bhkd->bnqhd", weights, value.astype(self.dtype))
    out = out.reshape((query.shape[0],) + out.shape[2:])
    return Dense((inputs_q.shape[-1],), ("joined_kv", "embed"), num_in_dims=2, dtype=self.dtype,
                 name="out")(out)

  def _cached_cross_kv(self, kv_proj):
    """Project the encoder outputs once, when the cache is created; later calls only read it."""
    if not self.has_variable("cache", "cross_key"):
      key, value = heads_major(*kv_proj())
      self.variable("cache", "cross_key", lambda: key)
      self.variable("cache", "cross_value", lambda: value)
      return key, value
    return self.get_variable("cache", "cross_key"), self.get_variable("cache", "cross_value")

  def _append_to_cache(self, key, value, mask):
    """Self-attention while decoding: the call that creates the cache sees the full length
    (shapes only); each later call writes one position at `cache_index` and attends to <= it.
    Keys and values `[b, h, length, d]`: one position is a contiguous row of each, so writing it
    touches 2 x b x h rows, not b x h x d scattered entries (keys `[b, h, d, length]` made that
    write as slow as the attention itself)."""
    key = key.swapaxes(2, 3)
    is_initialized = self.has_variable("cache", "cached_key")
    cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
    cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
    if not is_initialized:
      return key, value, mask
    index = cache_index.value
    axis = _CACHE_POSITION_AXIS
    length = cached_key.value.shape[axis]
    cached_key.value = jax.lax.dynamic_update_slice_in_dim(cached_key.value, key, index, axis)
    cached_value.value = jax.lax.dynamic_update_slice_in_dim(cached_value.value, value, index,
                                                             axis)
    cache_index.value = index + 1
    mask = (jnp.arange(length) <= index)[None, None, None, :]
    return cached_key.value, cached_value.value, mask
