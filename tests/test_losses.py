"""Every loss against an independent NumPy reference (loops on purpose), padding and bfloat16."""
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xlalign_jax import losses

# Jitted, as trainers call them; op-by-op eager dispatch would make this file ~10x slower.
jl = types.SimpleNamespace(**{
    name: jax.jit(getattr(losses, name), static_argnames=static) for name, static in [
        ("masked_mean", "axis"), ("masked_whiten", ()), ("token_log_probs", ()),
        ("sequence_log_likelihood", ()), ("cross_entropy_loss", ()), ("entropy_from_logits", ()),
        ("pointwise_bce_loss", ()), ("bradley_terry_loss", ()), ("dpo_loss", ()),
        ("kl_estimate", "kind"), ("per_token_rewards", "kl_kind"), ("gae_advantages", ()),
        ("ppo_policy_loss", ()), ("value_loss", ())]
})


def _jit_grad(fn, argnums=0):
  return jax.jit(jax.grad(fn, argnums))


B, T, V = 4, 7, 13
LENGTHS = (7, 4, 1, 0)  # right padding, including a full row and an empty row


def _mask():
  return np.array([[1.0] * n + [0.0] * (T - n) for n in LENGTHS], np.float32)


def _rng(seed=0):
  return np.random.default_rng(seed)


def _logits(rng, scale=3.0):
  return (scale * rng.normal(size=(B, T, V))).astype(np.float32)


def _targets(rng):
  return rng.integers(0, V, size=(B, T)).astype(np.int32)


def _bf16_roundtrip(x):
  """The float32 values a bfloat16 input actually holds, for the float32 reference."""
  return np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))


def _ref_log_softmax(row):
  row = row.astype(np.float64)
  return row - (row.max() + math.log(np.exp(row - row.max()).sum()))


def _ref_masked_mean(x, mask):
  total, count = 0.0, 0.0
  for value, weight in zip(np.ravel(x), np.ravel(mask)):
    if weight:
      total += weight * value
      count += weight
  return total / count if count else 0.0


def _ref_sigmoid(x):
  return 1.0 / (1.0 + math.exp(-x))


# --------------------------------------------------------------------------------------------------
# Masked reductions.
# --------------------------------------------------------------------------------------------------


def test_masked_mean_ignores_padding_even_when_it_holds_nan():
  rng = _rng()
  x = rng.normal(size=(B, T)).astype(np.float32)
  mask = _mask()
  x_with_junk = np.where(mask > 0, x, np.nan)
  np.testing.assert_allclose(jl.masked_mean(x_with_junk, mask), _ref_masked_mean(x, mask),
                             rtol=1e-6)
  per_row = jl.masked_mean(x_with_junk, mask, axis=1)
  expected = [_ref_masked_mean(x[b], mask[b]) for b in range(B)]
  np.testing.assert_allclose(per_row, expected, rtol=1e-6)
  assert per_row[-1] == 0.0  # empty row


def test_shape_mismatch_fails_loudly():
  with pytest.raises(ValueError, match="shape mismatch"):
    jl.masked_mean(np.zeros((B,)), np.zeros((B, 1)))
  with pytest.raises(ValueError, match="targets"):
    jl.token_log_probs(np.zeros((B, T, V)), np.zeros((B, T + 1), np.int32))


def test_masked_whiten():
  rng = _rng(1)
  x = (5.0 + 3.0 * rng.normal(size=(B, T))).astype(np.float32)
  mask = _mask()
  valid = x[mask > 0].astype(np.float64)
  expected = np.where(mask > 0, (x - valid.mean()) / math.sqrt(valid.var() + 1e-8), 0.0)
  out = np.asarray(jl.masked_whiten(x, mask))
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  assert abs(out[mask > 0].mean()) < 1e-5 and abs(out[mask > 0].std() - 1.0) < 1e-4


# --------------------------------------------------------------------------------------------------
# Language modelling.
# --------------------------------------------------------------------------------------------------


def _ref_token_log_probs(logits, targets):
  out = np.zeros(targets.shape)
  for b in range(targets.shape[0]):
    for t in range(targets.shape[1]):
      out[b, t] = _ref_log_softmax(logits[b, t])[targets[b, t]]
  return out


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_token_log_probs_and_sequence_log_likelihood(dtype):
  rng = _rng(2)
  logits, targets, mask = _logits(rng), _targets(rng), _mask()
  ref_logits = _bf16_roundtrip(logits) if dtype == jnp.bfloat16 else logits
  expected = _ref_token_log_probs(ref_logits, targets)

  out = jl.token_log_probs(jnp.asarray(logits, dtype), targets)
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

  seq = jl.sequence_log_likelihood(jnp.asarray(logits, dtype), targets, mask)
  assert seq.dtype == jnp.float32 and seq.shape == (B,)
  np.testing.assert_allclose(seq, (expected * mask).sum(axis=1), rtol=1e-5, atol=1e-5)


def _ref_cross_entropy(logits, targets, weights, label_smoothing, z_loss):
  """T5X's definition written out: explicit smoothed target distribution, minus its entropy."""
  confidence = 1.0 - label_smoothing
  low = label_smoothing / (V - 1)
  low_term = low * math.log(low) if low else 0.0
  target_entropy = -(confidence * math.log(confidence) + (V - 1) * low_term)
  loss_sum = 0.0
  for b in range(targets.shape[0]):
    for t in range(targets.shape[1]):
      if not weights[b, t]:
        continue
      row = logits[b, t].astype(np.float64)
      log_z = row.max() + math.log(np.exp(row - row.max()).sum())
      soft = np.full(V, low)
      soft[targets[b, t]] = confidence
      token = -(soft * (row - log_z)).sum() - target_entropy + z_loss * log_z**2
      loss_sum += weights[b, t] * token
  return loss_sum, weights.sum()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("label_smoothing,z_loss",
                         [(0.0, 0.0), (0.1, 0.0), (0.0, 1e-4), (0.2, 1e-2)])
def test_cross_entropy_loss(dtype, label_smoothing, z_loss):
  rng = _rng(3)
  logits, targets = _logits(rng), _targets(rng)
  weights = _mask() * rng.uniform(0.5, 1.5, size=(B, T)).astype(np.float32)  # non-binary weights
  ref_logits = _bf16_roundtrip(logits) if dtype == jnp.bfloat16 else logits
  expected = _ref_cross_entropy(ref_logits, targets, weights, label_smoothing, z_loss)
  loss_sum, weight_sum = jl.cross_entropy_loss(jnp.asarray(logits, dtype), targets, weights,
                                                   label_smoothing, z_loss)
  assert loss_sum.dtype == jnp.float32
  np.testing.assert_allclose([loss_sum, weight_sum], expected, rtol=1e-5)


def test_cross_entropy_matches_log_likelihood_and_sums_over_microbatches():
  rng = _rng(4)
  logits, targets, mask = _logits(rng), _targets(rng), _mask()
  loss_sum, weight_sum = jl.cross_entropy_loss(logits, targets, mask)
  np.testing.assert_allclose(loss_sum, -jl.sequence_log_likelihood(logits, targets, mask).sum(),
                             rtol=1e-6)
  # Splitting the batch into microbatches and adding the sums gives the full-batch numbers.
  halves = [jl.cross_entropy_loss(logits[s], targets[s], mask[s]) for s in (slice(0, 1),
                                                                                slice(1, None))]
  np.testing.assert_allclose(np.sum(halves, axis=0), [loss_sum, weight_sum], rtol=1e-6)


def test_cross_entropy_gradient():
  rng = _rng(5)
  logits, targets, mask = _logits(rng), _targets(rng), _mask()
  grad = _jit_grad(lambda x: jl.cross_entropy_loss(x, targets, mask, 0.1, 1e-4)[0])(
      jnp.asarray(logits, jnp.bfloat16))
  grad = np.asarray(grad.astype(jnp.float32))
  assert np.isfinite(grad).all()
  assert not grad[mask == 0].any()  # padding gets no gradient
  # Without z-loss the gradient is softmax - soft_target, which sums to 0 over the vocabulary.
  grad = np.asarray(_jit_grad(lambda x: jl.cross_entropy_loss(x, targets, mask, 0.1)[0])(logits))
  np.testing.assert_allclose(grad.sum(-1), 0.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_entropy_from_logits(dtype):
  rng = _rng(6)
  logits, mask = _logits(rng), _mask()
  logits[0, 0, 0] = 200.0  # near one-hot: tiny probabilities underflow and must not give NaN
  ref_logits = _bf16_roundtrip(logits) if dtype == jnp.bfloat16 else logits
  entropies = np.zeros((B, T))
  for b in range(B):
    for t in range(T):
      log_p = _ref_log_softmax(ref_logits[b, t])
      entropies[b, t] = -(np.exp(log_p) * log_p).sum()
  out = jl.entropy_from_logits(jnp.asarray(logits, dtype), mask)
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, _ref_masked_mean(entropies, mask), rtol=1e-5)
  np.testing.assert_allclose(jl.entropy_from_logits(np.zeros((1, 2, V)), np.ones((1, 2))),
                             math.log(V), rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Reward models and DPO.
# --------------------------------------------------------------------------------------------------


def test_pointwise_bce_loss():
  rng = _rng(7)
  scores = np.array([-40.0, -1.0, 0.0, 0.5, 2.0, 40.0], np.float32)  # includes saturated logits
  labels = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 1.0], np.float32)  # one soft label
  weights = np.array([1, 1, 1, 1, 1, 0], np.float32)
  per_example = []
  for s, y in zip(scores.astype(np.float64), labels):
    p = _ref_sigmoid(s)
    per_example.append(-(y * math.log(max(p, 1e-300)) + (1 - y) * math.log(max(1 - p, 1e-300))))
  np.testing.assert_allclose(jl.pointwise_bce_loss(scores, labels), np.mean(per_example),
                             rtol=1e-5)
  np.testing.assert_allclose(jl.pointwise_bce_loss(scores, labels, weights),
                             _ref_masked_mean(per_example, weights), rtol=1e-5)
  grad = _jit_grad(jl.pointwise_bce_loss)(rng.normal(size=6).astype(np.float32), labels)
  assert np.isfinite(grad).all()


def test_bradley_terry_loss_value_margin_and_gradient_sign():
  rng = _rng(8)
  chosen = rng.normal(size=B).astype(np.float32)
  rejected = rng.normal(size=B).astype(np.float32)
  margin = rng.uniform(0, 1, size=B).astype(np.float32)
  weights = np.array([1, 1, 1, 0], np.float32)

  def ref(m):
    return [-math.log(_ref_sigmoid(c - r - mm)) for c, r, mm in zip(chosen, rejected, m)]

  np.testing.assert_allclose(jl.bradley_terry_loss(chosen, rejected), np.mean(ref([0] * B)),
                             rtol=1e-6)
  np.testing.assert_allclose(jl.bradley_terry_loss(chosen, rejected, margin, weights),
                             _ref_masked_mean(ref(margin), weights), rtol=1e-6)
  np.testing.assert_allclose(jl.bradley_terry_loss(chosen, rejected, 0.5),
                             np.mean(ref([0.5] * B)), rtol=1e-6)
  # Raising the chosen score (or lowering the rejected one) always lowers the loss.
  g_chosen, g_rejected = _jit_grad(jl.bradley_terry_loss, argnums=(0, 1))(chosen, rejected)
  assert (np.asarray(g_chosen) < 0).all() and (np.asarray(g_rejected) > 0).all()
  expected = [-(1 - _ref_sigmoid(c - r)) / B for c, r in zip(chosen, rejected)]
  np.testing.assert_allclose(g_chosen, expected, rtol=1e-5)
  np.testing.assert_allclose(jl.bradley_terry_loss(np.zeros(3), np.zeros(3)), math.log(2),
                             rtol=1e-6)


def test_dpo_loss():
  rng = _rng(9)
  pc, pr, rc, rr = (rng.normal(-20, 5, size=B).astype(np.float32) for _ in range(4))
  beta = 0.1
  loss, chosen_rewards, rejected_rewards = jl.dpo_loss(pc, pr, rc, rr, beta)
  ref_chosen = beta * (pc.astype(np.float64) - rc)
  ref_rejected = beta * (pr.astype(np.float64) - rr)
  ref_loss = np.mean([-math.log(_ref_sigmoid(c - r)) for c, r in zip(ref_chosen, ref_rejected)])
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
  np.testing.assert_allclose(chosen_rewards, ref_chosen, rtol=1e-5)
  np.testing.assert_allclose(rejected_rewards, ref_rejected, rtol=1e-5)
  # Policy equal to the reference: loss log 2, zero rewards.
  np.testing.assert_allclose(jl.dpo_loss(pc, pr, pc, pr, beta)[0], math.log(2), rtol=1e-6)
  # The gradient pushes the chosen log-likelihood up and the rejected one down.
  g_chosen, g_rejected = _jit_grad(lambda a, b: jl.dpo_loss(a, b, rc, rr, beta)[0],
                                  argnums=(0, 1))(pc, pr)
  assert (np.asarray(g_chosen) < 0).all() and (np.asarray(g_rejected) > 0).all()


# --------------------------------------------------------------------------------------------------
# RLHF with PPO.
# --------------------------------------------------------------------------------------------------


def test_kl_estimates_match_formulas():
  rng = _rng(10)
  logp = rng.normal(-2, 1, size=(B, T)).astype(np.float32)
  ref_logp = rng.normal(-2, 1, size=(B, T)).astype(np.float32)
  for kind in ("k1", "k2", "k3"):
    out = np.asarray(jl.kl_estimate(logp, ref_logp, kind=kind))
    for b in range(B):
      for t in range(T):
        r = float(ref_logp[b, t]) - float(logp[b, t])
        expected = {"k1": -r, "k2": 0.5 * r * r, "k3": math.exp(r) - 1 - r}[kind]
        np.testing.assert_allclose(out[b, t], expected, rtol=1e-5, atol=1e-6)
  assert (np.asarray(jl.kl_estimate(logp, ref_logp, "k3")) >= 0).all()
  with pytest.raises(ValueError, match="unknown KL"):
    jl.kl_estimate(logp, ref_logp, "k4")


def test_k1_and_k3_are_unbiased_for_kl():
  rng = _rng(11)
  p = rng.dirichlet(np.ones(5))
  q = rng.dirichlet(np.ones(5))
  exact_kl = float((p * np.log(p / q)).sum())
  samples = rng.choice(5, size=200_000, p=p)
  logp, ref_logp = np.log(p[samples]), np.log(q[samples])
  for kind in ("k1", "k3"):
    assert abs(float(jnp.mean(jl.kl_estimate(logp, ref_logp, kind))) - exact_kl) < 0.01


def test_per_token_rewards():
  rng = _rng(12)
  rm_score = rng.normal(size=B).astype(np.float32)
  logp = rng.normal(-2, 1, size=(B, T)).astype(np.float32)
  ref_logp = rng.normal(-2, 1, size=(B, T)).astype(np.float32)
  mask, beta = _mask(), 0.1
  for kind in ("k1", "k3"):
    expected = np.zeros((B, T))
    for b, n in enumerate(LENGTHS):
      for t in range(n):
        r = float(ref_logp[b, t]) - float(logp[b, t])
        kl = -r if kind == "k1" else math.exp(r) - 1 - r
        expected[b, t] = -beta * kl + (rm_score[b] if t == n - 1 else 0.0)
    out = jl.per_token_rewards(rm_score, logp, ref_logp, mask, beta, kind)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="rm_score"):
    jl.per_token_rewards(rm_score[:, None], logp, ref_logp, mask, beta)


def _ref_gae(rewards, values, lengths, gamma, lam):
  advantages = np.zeros(rewards.shape)
  for b, n in enumerate(lengths):
    last = 0.0
    for t in reversed(range(n)):
      next_value = values[b, t + 1] if t + 1 < n else 0.0
      delta = rewards[b, t] + gamma * next_value - values[b, t]
      last = delta + gamma * lam * last
      advantages[b, t] = last
  mask = np.array([[t < n for t in range(rewards.shape[1])] for n in lengths])
  return advantages, np.where(mask, advantages + values, 0.0)


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 1.0), (0.5, 0.3), (1.0, 1.0)])
def test_gae_matches_python_reverse_loop_with_right_padding(gamma, lam):
  rng = _rng(13)
  rewards = rng.normal(size=(B, T)).astype(np.float32)
  values = rng.normal(size=(B, T)).astype(np.float32)
  mask = _mask()
  # Junk after the last valid token must not be bootstrapped from.
  junk_values = np.where(mask > 0, values, 1e3).astype(np.float32)
  junk_rewards = np.where(mask > 0, rewards, np.nan).astype(np.float32)
  advantages, returns = jl.gae_advantages(junk_rewards, junk_values, mask, gamma, lam)
  ref_advantages, ref_returns = _ref_gae(rewards, values, LENGTHS, gamma, lam)
  np.testing.assert_allclose(advantages, ref_advantages, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(returns, ref_returns, rtol=1e-5, atol=1e-5)


def test_gae_with_lambda_one_gives_discounted_returns():
  rewards = np.array([[1.0, 2.0, 3.0, 0.0]], np.float32)
  values = np.array([[0.5, -1.0, 2.0, 9.0]], np.float32)
  mask = np.array([[1, 1, 1, 0]], np.float32)
  _, returns = jl.gae_advantages(rewards, values, mask, 0.9, 1.0)
  np.testing.assert_allclose(returns, [[1 + 0.9 * 2 + 0.81 * 3, 2 + 0.9 * 3, 3, 0]], rtol=1e-6)


def test_ppo_policy_loss_clipping_at_the_boundaries():
  eps, tiny = 0.2, 1e-3
  # Ratios just inside and just outside each clip boundary, for positive and negative advantages.
  ratio = np.array([[1 + eps - tiny, 1 + eps + tiny, 1 - eps + tiny, 1 - eps - tiny, 1.0, 3.0],
                    [1 + eps - tiny, 1 + eps + tiny, 1 - eps + tiny, 1 - eps - tiny, 0.1, 3.0]])
  advantages = np.array([[1.0] * 6, [-1.0] * 6], np.float32)
  mask = np.array([[1, 1, 1, 1, 1, 0], [1] * 6], np.float32)  # the padded 3.0 must not count
  old_logp = np.full(ratio.shape, -1.5, np.float32)
  logp = (old_logp + np.log(ratio)).astype(np.float32)

  loss, clip_fraction, approx_kl = jl.ppo_policy_loss(logp, old_logp, advantages, mask, eps)
  # Clipping binds for A > 0 above 1 + eps, and for A < 0 below 1 - eps (0.8 - tiny, 0.1 and, in
  # row 2, 3.0 is not clipped: a bad token whose probability rose keeps its gradient).
  clipped = np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0]], bool)
  r = np.exp(logp.astype(np.float64) - old_logp)
  per_token = np.maximum(-advantages * r, -advantages * np.clip(r, 1 - eps, 1 + eps))
  np.testing.assert_allclose(clip_fraction, clipped[mask > 0].mean(), rtol=1e-6)
  np.testing.assert_allclose(loss, _ref_masked_mean(per_token, mask), rtol=1e-5)
  np.testing.assert_allclose(approx_kl, _ref_masked_mean(r - 1 - np.log(r), mask), rtol=1e-4)
  # Clipped tokens get exactly zero gradient; the others -A * ratio / n_valid.
  grad = np.asarray(_jit_grad(lambda x: jl.ppo_policy_loss(x, old_logp, advantages, mask,
                                                              eps)[0])(logp))
  expected = np.where(clipped | (mask == 0), 0.0, -advantages * r / mask.sum())
  np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-7)


def test_ppo_policy_loss_on_policy_is_minus_mean_advantage():
  rng = _rng(14)
  logp = rng.normal(-2, 1, size=(B, T)).astype(np.float32)
  advantages = rng.normal(size=(B, T)).astype(np.float32)
  mask = _mask()
  loss, clip_fraction, approx_kl = jl.ppo_policy_loss(logp, logp, advantages, mask, 0.2)
  np.testing.assert_allclose(loss, -_ref_masked_mean(advantages, mask), rtol=1e-5)
  assert clip_fraction == 0.0 and approx_kl == 0.0


@pytest.mark.parametrize("clip_eps", [None, 0.2])
def test_value_loss(clip_eps):
  rng = _rng(15)
  values, old_values, returns = (rng.normal(size=(B, T)).astype(np.float32) for _ in range(3))
  mask = _mask()
  errors = np.zeros((B, T))
  for b in range(B):
    for t in range(T):
      error = (values[b, t] - returns[b, t])**2
      if clip_eps is not None:
        delta = min(max(values[b, t] - old_values[b, t], -clip_eps), clip_eps)
        error = max(error, (old_values[b, t] + delta - returns[b, t])**2)
      errors[b, t] = error
  out = jl.value_loss(values, old_values, returns, mask, clip_eps)
  np.testing.assert_allclose(out, 0.5 * _ref_masked_mean(errors, mask), rtol=1e-5)
  grad = _jit_grad(jl.value_loss)(values, old_values, returns, mask, clip_eps)
  assert np.isfinite(grad).all() and not np.asarray(grad)[mask == 0].any()
