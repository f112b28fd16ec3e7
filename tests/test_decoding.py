"""The KV-cache sampler against a plain no-cache decode, and its sharing of one encoder pass."""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xlalign_jax import decoding, losses, network, partitioning, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.decoding import SamplingConfig
from xlalign_jax.errors import UserError

CONFIG = ModelConfig(vocab_size=64, emb_dim=32, num_heads=2, head_dim=16, num_encoder_layers=2,
                     num_decoder_layers=2, mlp_dim=64)
MODEL = network.Transformer(CONFIG)
LENGTH = 10


@pytest.fixture(scope="module")
def params():
  return jax.jit(lambda r: nn.unbox(training.model_init_fn(MODEL)(r)))(jax.random.PRNGKey(3))


@pytest.fixture(scope="module")
def inputs():
  rng = np.random.default_rng(0)
  tokens = rng.integers(2, CONFIG.vocab_size, (4, 7)).astype(np.int32)
  tokens[1, 4:] = 0
  tokens[3, 2:] = 0
  return tokens


def _greedy_without_cache(params, enc):
  """Reference: re-run the full teacher-forced model on the growing prefix at every step."""
  apply = jax.jit(MODEL.apply)
  out = []
  for row in enc:
    tokens = []
    for t in range(LENGTH):
      dec_in = np.array([[0] + tokens + [0] * (LENGTH - 1 - t)], np.int32)
      dec_tgt = np.array([tokens + [2] + [0] * (LENGTH - 1 - t)], np.int32)
      logits = apply({"params": params}, row[None], dec_in, dec_tgt)
      nxt = int(jnp.argmax(logits[0, t, 1:])) + 1  # PAD (0) is never generated
      tokens.append(nxt)
      if nxt == decoding.EOS_ID:
        break
    out.append(tokens + [0] * (LENGTH - len(tokens)))
  return np.array(out)


def _teacher_forced_log_probs(params, enc, tokens):
  dec_in = np.concatenate([np.zeros_like(tokens[:, :1]), tokens[:, :-1]], axis=1)
  logits = jax.jit(MODEL.apply)({"params": params}, enc, dec_in, tokens)
  return np.asarray(losses.token_log_probs(logits, tokens)) * (tokens > 0)


def test_greedy_with_cache_equals_decoding_without_cache(params, inputs):
  samples = jax.jit(lambda p, e: decoding.sample(
      MODEL, p, e, jax.random.PRNGKey(0), SamplingConfig(1, LENGTH, temperature=0.0)))(
          params, inputs)
  expected = _greedy_without_cache(params, inputs)
  np.testing.assert_array_equal(np.asarray(samples.tokens[:, 0]), expected)
  np.testing.assert_array_equal(np.asarray(samples.lengths[:, 0]), (expected > 0).sum(-1))


def test_sampled_log_probs_equal_teacher_forced_log_probs(params, inputs):
  n = 3
  samples = jax.jit(lambda p, e: decoding.sample(
      MODEL, p, e, jax.random.PRNGKey(1), SamplingConfig(n, LENGTH, temperature=1.0)))(
          params, inputs)
  tokens = np.asarray(samples.tokens).reshape(-1, LENGTH)
  enc = np.repeat(inputs, n, axis=0)
  expected = _teacher_forced_log_probs(params, enc, tokens)
  np.testing.assert_allclose(np.asarray(samples.log_probs).reshape(-1, LENGTH), expected,
                             atol=1e-4)
  # Rows run past the first stretch of the loop, so positions in grown caches are checked too.
  assert np.asarray(samples.lengths).max() > decoding.stretch_ends(LENGTH)[0]
  # Samples of one input differ (it is sampling), and padding follows EOS.
  assert len({tuple(r) for r in np.asarray(samples.tokens)[0]}) > 1
  for row in tokens:
    eos = np.where(row == decoding.EOS_ID)[0]
    if len(eos):
      assert np.all(row[eos[0] + 1:] == 0)


def test_n_samples_reuse_one_encoder_pass(params, inputs, monkeypatch):
  calls = []
  original = network.Encoder.__call__

  def counting(self, tokens, deterministic):
    calls.append(tokens.shape)
    return original(self, tokens, deterministic)

  monkeypatch.setattr(network.Encoder, "__call__", counting)
  jax.jit(lambda p, e: decoding.sample(MODEL, p, e, jax.random.PRNGKey(0),
                                       SamplingConfig(16, LENGTH)))(params, inputs)
  assert calls == [inputs.shape]  # once, on the B inputs, not on B * n rows
  cache = jax.eval_shape(lambda p: decoding.init_cache(
      MODEL, p, jnp.zeros((4, 7, 32)), jnp.asarray(inputs), 4 * 16, LENGTH), params)
  layer = cache["decoder"]["layers_0"]
  assert layer["encoder_decoder_attention"]["cross_key"].shape == (4, 2, 16, 7)  # [b, h, d, k]
  assert layer["self_attention"]["cached_key"].shape == (64, 2, LENGTH, 16)
  assert layer["self_attention"]["cached_value"].shape == (64, 2, LENGTH, 16)


def test_decoding_stretches_and_grown_cache():
  assert decoding.stretch_ends(64) == (16, 32, 48, 64)
  assert decoding.stretch_ends(10) == (3, 5, 8, 10)
  assert decoding.stretch_ends(2) == (1, 2)
  cache = {"self_attention": {"cached_key": jnp.ones((2, 1, 3, 4)), "cache_index": jnp.int32(3)},
           "positions": jnp.ones((3,), jnp.int8), "cross_key": jnp.ones((1, 1, 4, 3))}
  grown = decoding.grow_cache(cache, 5)
  key = np.asarray(grown["self_attention"]["cached_key"])
  assert key.shape == (2, 1, 5, 4) and key[:, :, :3].all() and not key[:, :, 3:].any()
  assert grown["positions"].shape == (5,) and grown["cross_key"].shape == (1, 1, 4, 3)
  assert int(grown["self_attention"]["cache_index"]) == 3


def test_top_k_1_and_tiny_top_p_are_greedy(params, inputs):
  run = lambda cfg: np.asarray(jax.jit(lambda p, e: decoding.sample(
      MODEL, p, e, jax.random.PRNGKey(5), cfg))(params, inputs).tokens)
  greedy = run(SamplingConfig(2, LENGTH, temperature=0.0))
  np.testing.assert_array_equal(run(SamplingConfig(2, LENGTH, temperature=1.0, top_k=1)), greedy)
  np.testing.assert_array_equal(run(SamplingConfig(2, LENGTH, temperature=1.0, top_p=1e-6)),
                                greedy)


def test_filter_logits_against_numpy():
  logits = jnp.array([[2.0, 1.0, 0.5, -1.0, 0.0]])
  probs = np.exp(logits[0]) / np.exp(logits[0]).sum()
  kept = np.asarray(decoding._filter_logits(logits, 0, 0.8)[0]) > -1e30
  order = np.argsort(-probs)
  mass_before = np.concatenate([[0], np.cumsum(probs[order])[:-1]])
  np.testing.assert_array_equal(kept[order], mass_before < 0.8)
  kept_k = np.asarray(decoding._filter_logits(logits, 2, 1.0)[0]) > -1e30
  np.testing.assert_array_equal(kept_k, [True, True, False, False, False])


def test_sharded_sampler_matches_single_device(params, inputs):
  mesh = partitioning.create_mesh(partitioning.MeshConfig(data=4, model=2))
  rules = (("batch", "data"), ("heads", "model"), ("joined_kv", "model"), ("mlp", "model"),
           ("vocab", "model"))
  abstract, shardings = training.abstract_params(MODEL, mesh, rules)
  sampler = decoding.Sampler(MODEL, jax.device_put(params, shardings), mesh, rules, shardings)
  cfg = SamplingConfig(2, LENGTH, temperature=0.0)
  sharded = sampler(inputs, jax.random.PRNGKey(0), cfg)
  local = jax.jit(lambda p, e: decoding.sample(MODEL, p, e, jax.random.PRNGKey(0), cfg))(
      params, inputs)
  np.testing.assert_array_equal(np.asarray(sharded.tokens), np.asarray(local.tokens))
  np.testing.assert_allclose(np.asarray(sharded.log_probs), np.asarray(local.log_probs),
                             atol=1e-4)


def test_sample_categorical_draws_from_softmax_and_never_a_masked_token():
  """Frequencies over 3 blocks of the vocabulary (one padded) against softmax, computed in NumPy."""
  rng = np.random.default_rng(0)
  vocab = 2 * decoding._SAMPLING_BLOCK + 37
  logits = np.full(vocab, -np.inf, np.float32)
  live = rng.choice(vocab, 12, replace=False)
  live[:2] = (3, vocab - 1)  # the very first and the very last entry, across block edges
  logits[live] = rng.normal(0.0, 1.0, live.size)
  rows = 40_000
  draws = np.asarray(jax.jit(decoding.sample_categorical)(
      jax.random.PRNGKey(1), jnp.broadcast_to(jnp.asarray(logits), (rows, vocab))))
  expected = np.exp(logits - logits[live].max())
  expected /= expected.sum()
  assert set(np.unique(draws)) <= set(live.tolist())
  freq = np.bincount(draws, minlength=vocab) / rows
  sigma = np.sqrt(expected * (1 - expected) / rows)
  np.testing.assert_array_less(np.abs(freq - expected), 5 * sigma + 1e-9)


@pytest.mark.parametrize("temperature,top_k", [(1.0, 0), (0.7, 0), (1.0, 5), (0.0, 0)])
def test_next_tokens_against_the_masked_softmax_and_numpy_log_normalizer(temperature, top_k):
  """One decoding step's draw is sample_categorical of the PAD-masked, tempered, truncated logits
  (the temperature-1 path reuses the log-normaliser's exponentials and must draw the same tokens),
  greedy never picks PAD even where PAD has the largest logit, and the log-normaliser is the
  untempered, unmasked model's."""
  rng = np.random.default_rng(0)
  logits = rng.normal(0.0, 3.0, (64, 2 * decoding._SAMPLING_BLOCK + 5)).astype(np.float32)
  logits[::2, decoding.PAD_ID] = 50.0
  logits[1, decoding.PAD_ID] = 200.0  # all the mass on PAD: the rest must not underflow to 0
  cfg = SamplingConfig(temperature=temperature, top_k=top_k)
  key = jax.random.PRNGKey(4)
  u = jax.random.uniform(key, (logits.shape[0],))  # what sample_categorical draws from the key
  tokens, log_normalizer = jax.jit(lambda u, l: decoding.next_tokens(u, l, cfg))(u, logits)
  masked = logits.copy()
  masked[:, decoding.PAD_ID] = -np.inf
  if temperature == 0.0:
    expected = masked.argmax(-1)
  else:
    tempered = masked / temperature
    if top_k:
      tempered[tempered < np.sort(tempered, -1)[:, -top_k:-top_k + 1]] = -np.inf
    expected = decoding.sample_categorical(key, jnp.asarray(tempered))
  np.testing.assert_array_equal(np.asarray(tokens), np.asarray(expected))
  assert not np.any(np.asarray(tokens) == decoding.PAD_ID)
  top = logits.max(-1, keepdims=True)
  np.testing.assert_allclose(np.asarray(log_normalizer),
                             np.log(np.exp(logits - top).sum(-1)) + top[:, 0], rtol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    ({"temperature": -1.0}, "temperature must be >= 0 (0 = greedy), got -1.0"),
    ({"top_p": 0.0}, "top_p must be in (0, 1] (1 = no top-p), got 0.0"),
    ({"top_k": -5, "num_samples": 0}, "num_samples must be at least 1, got 0; top_k must be >= 0"),
    ({"max_decode_length": 0}, "max_decode_length must be at least 1, got 0"),
])
def test_sampling_settings_that_would_draw_from_something_else_are_refused(kwargs, message):
  with pytest.raises(UserError, match=re.escape(message)):
    SamplingConfig(**kwargs)
