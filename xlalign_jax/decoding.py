"""Jitted autoregressive sampling from the mT5 decoder with a key/value cache.

One encoder pass per input; its cross-attention keys/values are projected once and shared by the n
samples of that input (queries are grouped n per encoded row, nothing is repeated). The token loop
is a few `lax.while_loop`s in sequence inside one jitted function, each a stretch of positions with
a self-attention cache grown to fit it; they stop when every row has emitted EOS, so there is no
Python loop per token and one compilation per (batch, input length, n, max length).

Returned log-probs are those of the model's own distribution (temperature 1, no top-k/top-p),
which is what PPO's importance ratios and KL penalties need.
"""
import dataclasses
import functools
from typing import Any, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from xlalign_jax import layers, network, partitioning
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError
from xlalign_jax.network import Transformer

EOS_ID = 1
PAD_ID = 0


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """temperature 0 = greedy; top_k 0 and top_p 1.0 = no truncation."""
  num_samples: int = 1
  max_decode_length: int = 64
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0

  def __post_init__(self):
    # The sampler would run with any of these and quietly draw from something else.
    problems = [f"{name} {problem}, got {value}" for name, value, ok, problem in (
        ("num_samples", self.num_samples, self.num_samples >= 1, "must be at least 1"),
        ("max_decode_length", self.max_decode_length, self.max_decode_length >= 1,
         "must be at least 1"),
        ("temperature", self.temperature, self.temperature >= 0, "must be >= 0 (0 = greedy)"),
        ("top_k", self.top_k, self.top_k >= 0, "must be >= 0 (0 = no top-k)"),
        ("top_p", self.top_p, 0 < self.top_p <= 1, "must be in (0, 1] (1 = no top-p)"))
        if not ok]
    if problems:
      raise UserError("sampling: " + "; ".join(problems))


class Samples(NamedTuple):
  tokens: jax.Array     # int32[B, n, L]; EOS included, PAD after it
  log_probs: jax.Array  # f32[B, n, L]; 0 at padding
  lengths: jax.Array    # int32[B, n]; tokens up to and including EOS


def _filter_logits(logits: jax.Array, top_k: int, top_p: float) -> jax.Array:
  """Mask all but the top-k tokens and the smallest set with probability mass >= top_p."""
  neg = jnp.finfo(logits.dtype).min
  if top_k > 0:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, neg, logits)
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    cumulative = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    # Keep a token if the mass strictly before it is < top_p (the top token is always kept).
    keep_sorted = (cumulative - jax.nn.softmax(sorted_logits, axis=-1)) < top_p
    threshold = jnp.min(jnp.where(keep_sorted, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < threshold, neg, logits)
  return logits


_SAMPLING_BLOCK = 256


def _last_positive(x: jax.Array) -> jax.Array:
  """Index of the last entry > 0 along the last axis."""
  return x.shape[-1] - 1 - jnp.argmax(jnp.flip(x > 0, axis=-1), axis=-1)


def sample_categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
  """One token per row, drawn exactly from softmax(logits), by a two-level inverse CDF.

  jax.random.categorical draws a Gumbel variate per vocabulary entry; on CPU the threefry bits for
  128 rows x 250k entries cost ~4x the logits matmul itself. Here one uniform per row is compared
  with the cumulative mass of blocks of the vocabulary, then with that within the chosen block.
  Entries with logit -inf (or float min) have no mass and are never drawn.
  """
  return _draw_from_logits(jax.random.uniform(key, (logits.shape[0],)), logits)


def _draw_from_logits(u: jax.Array, logits: jax.Array) -> jax.Array:
  return draw_from_mass(u, jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True)))[0]


def draw_from_mass(u: jax.Array, mass: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """`sample_categorical` from unnormalised probabilities (>= 0, some > 0 in every row) with one
  uniform `u` in [0, 1) per row: (tokens, each row's total mass). The total is the sum of the
  blocks' sums, so a caller that needs the normaliser makes no second pass over the vocabulary."""
  rows, vocab = mass.shape
  num_blocks = -(-vocab // _SAMPLING_BLOCK)
  mass = jnp.pad(mass, ((0, 0), (0, num_blocks * _SAMPLING_BLOCK - vocab)))
  mass = mass.reshape(rows, num_blocks, _SAMPLING_BLOCK)
  block_mass = mass.sum(axis=-1)
  block_cdf = jnp.cumsum(block_mass, axis=-1)
  total = block_cdf[:, -1]
  u = u * total
  # The first block whose cumulative mass exceeds u; the clamp only matters when rounding puts u
  # at the very end, and must not land on a massless (padded or masked) block.
  block = jnp.minimum(jnp.sum(block_cdf <= u[:, None], axis=-1), _last_positive(block_mass))
  chosen_cdf = jnp.take_along_axis(block_cdf, block[:, None], axis=-1)[:, 0]
  chosen_mass = jnp.take_along_axis(block_mass, block[:, None], axis=-1)[:, 0]
  inner = jnp.take_along_axis(mass, block[:, None, None], axis=1)[:, 0]
  rest = u - (chosen_cdf - chosen_mass)  # how far into the chosen block u falls
  offset = jnp.minimum(jnp.sum(jnp.cumsum(inner, axis=-1) <= rest[:, None], axis=-1),
                       _last_positive(inner))
  return block * _SAMPLING_BLOCK + offset, total


def next_tokens(u: jax.Array, logits: jax.Array,
                config: SamplingConfig) -> Tuple[jax.Array, jax.Array]:
  """(tokens, the model's log-normaliser) for one decoding step's float32 `[rows, vocab]` logits
  and one uniform in [0, 1) per row (unused when greedy).

  PAD is never generated. At temperature 1 without truncation the draw reuses the exponentials of
  the log-normaliser, and the normaliser the draw's block sums: one pass over the vocabulary
  instead of three (they weigh as much as the logits matmul at mt5_tiny). PAD's mass is added
  back in log space, so a model that puts nearly all its mass on PAD neither underflows the rest
  nor overflows the normaliser.
  """
  # A select, not a scatter into a copy of the logits: it fuses into the consumers.
  masked = jnp.where(jnp.arange(logits.shape[-1]) == PAD_ID, -jnp.inf, logits)
  max_logit = jnp.max(masked, axis=-1, keepdims=True)
  mass = jnp.exp(masked - max_logit)
  if config.temperature == 1.0 and config.top_k == 0 and config.top_p == 1.0:
    tokens, total = draw_from_mass(u, mass)
  else:
    total = jnp.sum(mass, axis=-1)
    if config.temperature == 0.0:
      tokens = jnp.argmax(masked, axis=-1)
    else:
      tokens = _draw_from_logits(
          u, _filter_logits(masked / config.temperature, config.top_k, config.top_p))
  log_normalizer = jnp.logaddexp(jnp.log(total) + max_logit[:, 0], logits[:, PAD_ID])
  return tokens, log_normalizer


def init_cache(model: Transformer, params: Any, encoded: jax.Array,
               encoder_input_tokens: jax.Array, batch_rows: int, max_length: int) -> Any:
  """The decoder's cache: zero self-attention keys/values for `batch_rows` sequences of
  `max_length`, and the cross-attention keys/values of the encoded inputs, projected once."""
  def create(p, enc_out, enc_tokens):
    dummy = jnp.ones((batch_rows, max_length), jnp.int32)
    _, variables = model.apply({"params": p}, enc_out, enc_tokens, dummy, dummy, decode=True,
                               mutable=["cache"], method=Transformer.decode)
    return variables["cache"]

  shapes = jax.eval_shape(create, params, encoded, encoder_input_tokens)
  cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  cfg = model.config
  for i in range(cfg.num_decoder_layers):
    attn = params["decoder"][f"layers_{i}"]["encoder_decoder_attention"]
    slot = cache["decoder"][f"layers_{i}"]["encoder_decoder_attention"]
    projected = layers.project_together(encoded, [attn["key"]["kernel"], attn["value"]["kernel"]],
                                        jnp.dtype(cfg.dtype))
    slot["cross_key"], slot["cross_value"] = layers.heads_major(
        *(y.reshape(encoded.shape[:2] + (cfg.num_heads, cfg.head_dim)) for y in projected))
  return cache


_STRETCHES = 4


def stretch_ends(length: int, stretches: int = _STRETCHES) -> Tuple[int, ...]:
  """Where the decoding loop's stretches end: each stretch runs with a self-attention cache just
  long enough for it, so early steps do not read (memory-bound) positions not yet written."""
  count = min(stretches, length)
  return tuple(sorted({-(-length * k // count) for k in range(1, count + 1)}))


def grow_cache(cache: Any, length: int) -> Any:
  """The decoder cache with its self-attention keys, values and positions zero-padded to
  `length` positions (one copy; the attention masks positions not yet written)."""
  def grow(path, x):
    axis = network.DECODE_CACHE_LENGTH_AXES.get(getattr(path[-1], "key", None))
    if axis is None or x.shape[axis] == length:
      return x
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, length - x.shape[axis])
    return jnp.pad(x, pad)
  return jax.tree_util.tree_map_with_path(grow, cache)


def sample(model: Transformer, params: Any, encoder_input_tokens: jax.Array, rng: jax.Array,
           config: SamplingConfig) -> Samples:
  """n samples per input (traceable; wrap in jax.jit or use `Sampler`).

  The decoding loop runs in a few stretches (`stretch_ends`), the cache grown between them: at
  step t the self-attention reads a cache of about t positions, not `max_decode_length`."""
  batch = encoder_input_tokens.shape[0]
  n, length = config.num_samples, config.max_decode_length
  rows = batch * n
  ends = stretch_ends(length)
  encoded = model.apply({"params": params}, encoder_input_tokens, method=Transformer.encode)
  cache = init_cache(model, params, encoded, encoder_input_tokens, rows, ends[0])
  ones = jnp.ones((rows, 1), jnp.int32)

  # Every step's uniforms in one draw: threefry inside the loop was ~200 small XLA ops a step.
  uniforms = jax.random.uniform(rng, (length, rows))

  def step(state):
    i, tokens, log_probs, cache, done, prev = state
    logits, variables = model.apply(
        {"params": params, "cache": cache}, encoded, encoder_input_tokens, prev[:, None], ones,
        decode=True, decode_position=i, mutable=["cache"], method=Transformer.decode)
    logits = logits[:, 0].astype(jnp.float32)
    u = jax.lax.dynamic_index_in_dim(uniforms, i, keepdims=False)
    next_token, log_normalizer = next_tokens(u, logits, config)
    next_token = jnp.where(done, PAD_ID, next_token).astype(jnp.int32)
    token_logit = jnp.take_along_axis(logits, next_token[:, None], axis=-1)[:, 0]
    token_lp = jnp.where(done, 0.0, token_logit - log_normalizer)
    tokens = jax.lax.dynamic_update_slice_in_dim(tokens, next_token[:, None], i, axis=1)
    log_probs = jax.lax.dynamic_update_slice_in_dim(log_probs, token_lp[:, None], i, axis=1)
    done = done | (next_token == EOS_ID)
    return i + 1, tokens, log_probs, variables["cache"], done, next_token

  state = (jnp.array(0, jnp.int32), jnp.zeros((rows, length), jnp.int32),
           jnp.zeros((rows, length), jnp.float32), cache, jnp.zeros((rows,), bool),
           jnp.zeros((rows,), jnp.int32))
  def running_until(end):
    return lambda state: (state[0] < end) & ~jnp.all(state[4])  # position < end, a row not done

  for end in ends:
    i, tokens, log_probs, cache, *rest = state
    state = jax.lax.while_loop(running_until(end), step,
                               (i, tokens, log_probs, grow_cache(cache, end), *rest))
  _, tokens, log_probs, *_ = state
  lengths = jnp.sum(tokens != PAD_ID, axis=-1)
  return Samples(tokens.reshape(batch, n, length), log_probs.reshape(batch, n, length),
                 lengths.reshape(batch, n))


class Sampler:
  """`sample` jitted once per shape, data-parallel over the mesh's 'data' axis.

  Every process passes the same whole batch and gets all samples back (multi-host: each process
  places its devices' rows; the samples are gathered, they are small next to the model)."""

  def __init__(self, model: Transformer, params: Any, mesh, rules, param_shardings: Any):
    self.model, self.params, self.mesh, self.rules = model, params, mesh, rules
    self.param_shardings = param_shardings
    self._inputs_sharding = partitioning.batch_sharding(mesh, rules, 2)
    self._replicated = NamedSharding(mesh, PartitionSpec())
    self._compiled = {}

  def __call__(self, encoder_input_tokens: np.ndarray, rng: jax.Array,
               config: SamplingConfig) -> Samples:
    divisor = partitioning.batch_size_divisor(self.mesh, self.rules)
    if encoder_input_tokens.shape[0] % divisor:
      raise UserError(f"sampling batch {encoder_input_tokens.shape[0]} is not divisible by the "
                      f"{divisor} data-parallel shards")
    if config not in self._compiled:
      self._compiled[config] = jax.jit(
          functools.partial(sample, self.model, config=config),
          in_shardings=(self.param_shardings, self._inputs_sharding, self._replicated),
          out_shardings=Samples(*(self._replicated,) * 3))
    inputs = partitioning.global_array(encoder_input_tokens, self._inputs_sharding)
    key = partitioning.global_array(jax.device_get(rng), self._replicated)
    with partitioning.activate(self.mesh, self.rules):
      return self._compiled[config](self.params, inputs, key)


def check_memory(config: ModelConfig, batch: int, input_length: int, sampling: SamplingConfig,
                 budget_bytes: int) -> None:
  """Fail before any work when the decoder cache alone would not fit `budget_bytes`."""
  itemsize = jnp.dtype(config.dtype).itemsize
  per_layer = (2 * batch * sampling.num_samples * sampling.max_decode_length +
               2 * batch * input_length) * config.num_heads * config.head_dim * itemsize
  logits = batch * sampling.num_samples * config.vocab_size * 4 * 3
  need = per_layer * config.num_decoder_layers + logits
  if need > budget_bytes:
    raise UserError(
        f"sampling n={sampling.num_samples} for a batch of {batch} needs about "
        f"{need / 2**30:.1f} GiB for the decoder cache and logits, more than the "
        f"{budget_bytes / 2**30:.1f} GiB budget; lower the batch size or n")
