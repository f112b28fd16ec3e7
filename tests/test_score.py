"""The scorer batches pairs and encodes each distinct input of a batch once: its numbers must equal
those of every pair in its own row of the whole model."""
import jax
import numpy as np
import pytest

from xlalign_jax.score import Scorer


def _pairs(seed=0):
  """Inputs of several lengths, each with 1 to 7 targets of several lengths (as best-of-n
  candidates or an article's summaries), shuffled; 0 is padding and 1 EOS."""
  rng = np.random.default_rng(seed)
  pairs = []
  for _ in range(14):
    src = list(rng.integers(2, 4096, rng.integers(3, 40))) + [1]
    for _ in range(rng.integers(1, 8)):
      pairs.append((src, list(rng.integers(2, 4096, rng.integers(0, 20))) + [1]))
  rng.shuffle(pairs)
  return pairs


def _through_the_whole_model(scorer, pairs, reward):
  """Every pair in its own row of one `model.apply` (encoder and decoder together, each row its own
  encoder pass), padded to one length; log-probabilities by NumPy."""
  enc = np.zeros((len(pairs), 40), np.int32)
  tgt = np.zeros((len(pairs), 21), np.int32)
  for i, (s, t) in enumerate(pairs):
    enc[i, :len(s)], tgt[i, :len(t)] = s, t
  dec_in = np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], axis=1)
  out = np.asarray(scorer.model.apply({"params": scorer.params}, enc, dec_in, tgt), np.float64)
  lengths = np.array([len(t) for _, t in pairs])
  if reward:
    return out[np.arange(len(pairs)), lengths - 1]
  top = out.max(-1, keepdims=True)
  log_probs = out - top - np.log(np.sum(np.exp(out - top), -1, keepdims=True))
  token_log_probs = np.take_along_axis(log_probs, tgt[..., None], -1)[..., 0]
  return np.sum(token_log_probs * (tgt > 0), axis=-1)


@pytest.mark.parametrize("reward", [False, True], ids=["loglik", "reward"])
def test_batched_scores_equal_the_whole_model_per_pair(small_checkpoint, small_rm_checkpoint,
                                                        reward):
  scorer = Scorer(str(small_rm_checkpoint if reward else small_checkpoint), 32, reward=reward)
  pairs = _pairs()
  encoder_rows = []
  jitted = scorer._fn

  def counting(params, enc, *rest):
    encoder_rows.append(enc.shape[0])
    return jitted(params, enc, *rest)
  scorer._fn = counting
  got = scorer(pairs)
  want = _through_the_whole_model(scorer, pairs, reward)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  # Fewer encoder rows than pairs: inputs shared by several targets were encoded once per batch
  # (the encoder's rows come in multiples of the 8 devices: 8, 16 or 32).
  assert len(encoder_rows) == -(-len(pairs) // 32)
  assert sum(encoder_rows) < len(pairs) and set(encoder_rows) <= {8, 16, 32}


def test_the_order_of_pairs_does_not_change_their_scores(small_rm_checkpoint):
  scorer = Scorer(str(small_rm_checkpoint), 32, reward=True)
  pairs = _pairs(seed=1)
  perm = np.random.default_rng(2).permutation(len(pairs))
  np.testing.assert_allclose(scorer([pairs[i] for i in perm]), scorer(pairs)[perm],
                             rtol=1e-5, atol=1e-5)


def test_scorers_of_one_architecture_share_compiled_programs_but_not_parameters(
    small_rm_checkpoint):
  first = Scorer(str(small_rm_checkpoint), 32, reward=True)
  second = Scorer(str(small_rm_checkpoint), 32, reward=True)
  # Another checkpoint of the same architecture: other weights, same shapes and shardings.
  second.params = jax.tree.map(lambda x: x * 1.5, second.params)
  assert first._fn is second._fn
  pairs = _pairs(seed=3)
  want_first = _through_the_whole_model(first, pairs, True)
  want_second = _through_the_whole_model(second, pairs, True)
  assert np.abs(want_first - want_second).max() > 0.1
  np.testing.assert_allclose(first(pairs), want_first, rtol=1e-4, atol=1e-4)
  compiled = first._fn._cache_size()
  np.testing.assert_allclose(second(pairs), want_second, rtol=1e-4, atol=1e-4)
  assert second._fn._cache_size() == compiled  # the same batch shapes: nothing compiled again


def test_one_call_compiles_one_program_whatever_its_lengths(small_rm_checkpoint):
  """Inputs of 4 to 40 tokens and targets of 1 to 21 in three batches: every batch is padded to the
  call's longest input and target (rounded up to 16), so the call compiles once (per-batch
  power-of-two lengths compiled three programs)."""
  scorer = Scorer(str(small_rm_checkpoint), 8, reward=True)
  rng = np.random.default_rng(4)
  pairs = [(list(rng.integers(2, 4096, n)) + [1], list(rng.integers(2, 4096, m)) + [1])
           for n, m in zip(np.linspace(3, 39, 24).astype(int), np.linspace(0, 20, 24).astype(int))]
  before = scorer._fn._cache_size()
  got = scorer(pairs)
  assert scorer._fn._cache_size() == before + 1
  np.testing.assert_allclose(got, _through_the_whole_model(scorer, pairs, True),
                             rtol=1e-4, atol=1e-4)
