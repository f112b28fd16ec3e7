"""Losses for LM training, reward modelling, DPO and PPO, as small pure jax.numpy functions.

Shapes are written as `f[B, T, V]` (batch, target length, vocabulary); `f` is any float dtype,
`f32` means float32, `int` an integer dtype. Inputs may be bfloat16 (TPU activations); all math runs
in float32, because a bfloat16 softmax over mT5's 250k vocabulary loses exactly the small
probabilities that log-likelihoods and KL terms are made of. `mask`/`weights` are 1 on real tokens
(or examples) and 0 on padding; padding never contributes to a loss or a statistic, whatever values
sit there. Each function is checked against a NumPy reference in tests/test_losses.py.
"""
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

Array = jax.Array


def _f32(x) -> Array:
  return jnp.asarray(x, jnp.float32)


def _check_same_shape(**arrays) -> None:
  """Fails loudly on mismatched shapes: a [B] vs [B, 1] mix would broadcast silently to [B, B]."""
  shapes = {name: jnp.shape(x) for name, x in arrays.items()}
  if len(set(shapes.values())) > 1:
    raise ValueError(f"shape mismatch: {shapes}")


def _masked_sum(x: Array, mask: Array, axis=None) -> Array:
  # `where` rather than a bare product, so NaN/inf left in padding (0 * inf = NaN) cannot leak in.
  return jnp.sum(jnp.where(mask != 0, x * mask, 0.0), axis=axis)


def _target_logit_and_log_z(logits: Array, targets: Array) -> Tuple[Array, Array]:
  """Target logits and log-normalisers, f32[...]; avoids materialising a [B, T, V] log-softmax."""
  if targets.shape != logits.shape[:-1]:
    raise ValueError(f"targets {targets.shape} must be logits {logits.shape} without the last axis")
  logits = _f32(logits)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  return target_logit, jax.nn.logsumexp(logits, axis=-1)


# --------------------------------------------------------------------------------------------------
# Masked reductions.
# --------------------------------------------------------------------------------------------------


def masked_mean(x: Array, mask: Array, axis=None) -> Array:
  """Mean of `x` where `mask` != 0 (mask values act as weights); 0 where nothing is valid.

  Args:
    x: f[...].
    mask: f[...] (or bool), same shape as `x`.
    axis: axes to reduce; None reduces all.

  Returns:
    f32 with `axis` reduced.
  """
  _check_same_shape(x=x, mask=mask)
  x, mask = _f32(x), _f32(mask)
  count = jnp.sum(mask, axis=axis)
  return _masked_sum(x, mask, axis) / jnp.where(count != 0, count, 1.0)


def masked_whiten(x: Array, mask: Array) -> Array:
  """Normalises `x` to zero mean and unit variance over valid positions (PPO advantages).

  Statistics are over all valid positions of the batch (not per row), so rows with better returns
  keep positive advantages. The variance is the biased (population) one, and 1e-8 keeps a
  constant input finite.

  Args:
    x: f[B, T].
    mask: f[B, T].

  Returns:
    f32[B, T], 0 at padding.
  """
  mean = masked_mean(x, mask)
  centred = _f32(x) - mean
  var = masked_mean(jnp.square(centred), mask)
  return jnp.where(_f32(mask) != 0, centred * jax.lax.rsqrt(var + 1e-8), 0.0)


# --------------------------------------------------------------------------------------------------
# Language modelling.
# --------------------------------------------------------------------------------------------------


def token_log_probs(logits: Array, targets: Array) -> Array:
  """log softmax(logits)[target] per token.

  Args:
    logits: f[B, T, V].
    targets: int[B, T].

  Returns:
    f32[B, T]; padding positions hold the log-prob of whatever id is there, so mask downstream.
  """
  target_logit, log_z = _target_logit_and_log_z(logits, targets)
  return target_logit - log_z


def sequence_log_likelihood(logits: Array, targets: Array, weights: Array) -> Array:
  """Sum of token log-probs over valid tokens: log p(y | x) per sequence (DPO, reranking).

  Args:
    logits: f[B, T, V].
    targets: int[B, T].
    weights: f[B, T], 0 on padding.

  Returns:
    f32[B].
  """
  _check_same_shape(targets=targets, weights=weights)
  return _masked_sum(token_log_probs(logits, targets), _f32(weights), axis=-1)


def cross_entropy_loss(logits: Array,
                       targets: Array,
                       weights: Array,
                       label_smoothing: float = 0.0,
                       z_loss: float = 0.0) -> Tuple[Array, Array]:
  """Token cross-entropy as in T5X: optional label smoothing and z-loss, returned as sums.

  Sums rather than a mean, so a trainer adds them over microbatches and devices and divides once by
  the global weight sum; a mean of per-microbatch means is biased when microbatches hold different
  numbers of real tokens. Label smoothing puts 1 - label_smoothing on the target and spreads the
  rest evenly over the other V - 1 ids; the entropy of that target is subtracted (as T5X does), so a
  model that predicts it exactly scores 0. The z-loss, z_loss * log(Z)^2 per token, keeps the
  softmax normaliser near 1, which keeps bfloat16 logits in range.

  Args:
    logits: f[B, T, V].
    targets: int[B, T].
    weights: f[B, T], 0 on padding.
    label_smoothing: in [0, 1).
    z_loss: coefficient of log(Z)^2; 1e-4 in T5X.

  Returns:
    (loss_sum, weight_sum): f32 scalars; the mean token loss is loss_sum / weight_sum.
  """
  _check_same_shape(targets=targets, weights=weights)
  vocab = logits.shape[-1]
  target_logit, log_z = _target_logit_and_log_z(logits, targets)
  confidence = 1.0 - label_smoothing
  low_confidence = label_smoothing / (vocab - 1)
  # sum_v soft_target[v] * logit[v], without building the [B, T, V] one-hot soft targets.
  soft_target_logit = (low_confidence * jnp.sum(_f32(logits), axis=-1) +
                       (confidence - low_confidence) * target_logit)
  target_entropy = -(xlogy(confidence, confidence) +
                     (vocab - 1) * xlogy(low_confidence, low_confidence))
  token_loss = log_z - soft_target_logit - target_entropy + z_loss * jnp.square(log_z)
  weights = _f32(weights)
  return _masked_sum(token_loss, weights), jnp.sum(weights)


def entropy_from_logits(logits: Array, mask: Array) -> Array:
  """Mean entropy (nats) of softmax(logits) over valid tokens: a PPO collapse monitor.

  Args:
    logits: f[B, T, V].
    mask: f[B, T].

  Returns:
    f32 scalar.
  """
  # From log_softmax, not log(softmax): a probability that underflows to 0 meets a finite log.
  log_p = jax.nn.log_softmax(_f32(logits), axis=-1)
  entropy = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)
  return masked_mean(entropy, mask)


# --------------------------------------------------------------------------------------------------
# Reward models and DPO.
# --------------------------------------------------------------------------------------------------


def _example_mean(per_example: Array, weights: Optional[Array]) -> Array:
  return masked_mean(per_example, jnp.ones_like(per_example) if weights is None else weights)


def pointwise_bce_loss(scores: Array, labels: Array, weights: Optional[Array] = None) -> Array:
  """Binary cross-entropy of reward logits against 0/1 (or soft) labels, e.g. Seahorse question 6.

  Args:
    scores: f[B], logits (sigmoid(score) = p(good)).
    labels: f[B] in [0, 1].
    weights: optional f[B], 0 on padding examples.

  Returns:
    f32 scalar, weighted mean over examples.
  """
  _check_same_shape(scores=scores, labels=labels)
  scores, labels = _f32(scores), _f32(labels)
  # softplus(s) - y * s == -[y log sigmoid(s) + (1 - y) log sigmoid(-s)], without overflow.
  return _example_mean(jax.nn.softplus(scores) - labels * scores, weights)


def bradley_terry_loss(chosen_scores: Array,
                       rejected_scores: Array,
                       margin: Optional[Array] = None,
                       weights: Optional[Array] = None) -> Array:
  """Pairwise reward loss -log sigmoid(r_chosen - r_rejected - margin).

  Args:
    chosen_scores: f[B].
    rejected_scores: f[B].
    margin: optional scalar or f[B]; the chosen score must beat the rejected one by this much
      (Llama 2 uses a margin growing with the rated preference strength).
    weights: optional f[B], 0 on padding pairs.

  Returns:
    f32 scalar, weighted mean over pairs.
  """
  _check_same_shape(chosen_scores=chosen_scores, rejected_scores=rejected_scores)
  diff = _f32(chosen_scores) - _f32(rejected_scores)
  if margin is not None:
    if jnp.ndim(margin):
      _check_same_shape(chosen_scores=chosen_scores, margin=margin)
    diff = diff - _f32(margin)
  return _example_mean(-jax.nn.log_sigmoid(diff), weights)


def dpo_loss(policy_chosen_logps: Array,
             policy_rejected_logps: Array,
             ref_chosen_logps: Array,
             ref_rejected_logps: Array,
             beta: float,
             weights: Optional[Array] = None) -> Tuple[Array, Array, Array]:
  """Direct Preference Optimisation loss (Rafailov et al., 2023) with its implicit rewards.

  The implicit reward of a response is beta * (log pi(y|x) - log pi_ref(y|x)); the loss is the
  Bradley-Terry loss on those rewards.

  Args:
    policy_chosen_logps: f[B], sequence log-likelihoods (`sequence_log_likelihood`).
    policy_rejected_logps: f[B].
    ref_chosen_logps: f[B], under the frozen reference model.
    ref_rejected_logps: f[B].
    beta: KL strength; larger keeps the policy closer to the reference.
    weights: optional f[B], 0 on padding pairs.

  Returns:
    (loss, chosen_rewards, rejected_rewards): f32 scalar and two f32[B]. The rewards are for logging
    (reward accuracy and margins) and carry no gradient.
  """
  _check_same_shape(policy_chosen_logps=policy_chosen_logps,
                    policy_rejected_logps=policy_rejected_logps,
                    ref_chosen_logps=ref_chosen_logps,
                    ref_rejected_logps=ref_rejected_logps)
  chosen_rewards = beta * (_f32(policy_chosen_logps) - _f32(ref_chosen_logps))
  rejected_rewards = beta * (_f32(policy_rejected_logps) - _f32(ref_rejected_logps))
  loss = bradley_terry_loss(chosen_rewards, rejected_rewards, weights=weights)
  return (loss, jax.lax.stop_gradient(chosen_rewards), jax.lax.stop_gradient(rejected_rewards))


# --------------------------------------------------------------------------------------------------
# RLHF with PPO: KL penalty, rewards, advantages, policy and value losses.
# --------------------------------------------------------------------------------------------------


def kl_estimate(logp: Array, ref_logp: Array, kind: str = "k1") -> Array:
  """Per-token estimate of KL(pi || pi_ref) from the log-probs of tokens sampled from pi.

  Schulman's estimators ("Approximating KL divergence", 2020), with r = ref_logp - logp:
  k1 = -r (unbiased, high variance, can be negative); k2 = r^2 / 2 (biased, low variance);
  k3 = exp(r) - 1 - r (unbiased, low variance, never negative).

  Args:
    logp: f[...], log pi of the sampled tokens.
    ref_logp: f[...], log pi_ref of the same tokens.
    kind: "k1", "k2" or "k3" (static under jit).

  Returns:
    f32[...], elementwise; mask it downstream.
  """
  _check_same_shape(logp=logp, ref_logp=ref_logp)
  log_ratio = _f32(ref_logp) - _f32(logp)
  if kind == "k1":
    return -log_ratio
  if kind == "k2":
    return 0.5 * jnp.square(log_ratio)
  if kind == "k3":
    # expm1 keeps precision for the small ratios near convergence, where exp(r) - 1 cancels.
    return jnp.expm1(log_ratio) - log_ratio
  raise ValueError(f"unknown KL estimator {kind!r}; expected 'k1', 'k2' or 'k3'")


def per_token_rewards(rm_score: Array,
                      logp: Array,
                      ref_logp: Array,
                      mask: Array,
                      beta: float,
                      kl_kind: str = "k1") -> Array:
  """The PPO reward of RLHF: -beta * KL at every token, plus the RM score at the last valid token.

  Args:
    rm_score: f[B], reward-model score of each full response.
    logp: f[B, T], policy log-probs of the sampled tokens.
    ref_logp: f[B, T], reference-model log-probs of the same tokens.
    mask: f[B, T], 1 on response tokens.
    beta: KL penalty coefficient (0.1 in the paper).
    kl_kind: estimator passed to `kl_estimate`; k1 is the usual choice here.

  Returns:
    f32[B, T], 0 at padding; a row without valid tokens gets no score.
  """
  _check_same_shape(logp=logp, ref_logp=ref_logp, mask=mask)
  if jnp.shape(rm_score) != jnp.shape(mask)[:1]:
    raise ValueError(f"rm_score {jnp.shape(rm_score)} must be [B] for mask {jnp.shape(mask)}")
  valid = _f32(mask) != 0
  length = valid.shape[1]
  # The highest valid index; with right padding this is length - 1.
  last = length - 1 - jnp.argmax(valid[:, ::-1], axis=1)
  score = jnp.where(jnp.any(valid, axis=1), _f32(rm_score), 0.0)
  score_at_end = jax.nn.one_hot(last, length, dtype=jnp.float32) * score[:, None]
  return jnp.where(valid, -beta * kl_estimate(logp, ref_logp, kl_kind) + score_at_end, 0.0)


def gae_advantages(rewards: Array, values: Array, mask: Array, gamma: float,
                   lam: float) -> Tuple[Array, Array]:
  """Generalised advantage estimation (Schulman et al., 2016) with a reverse `lax.scan` over time.

  delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, where V_{t+1} and
  A_{t+1} are 0 past the last valid token: a response ends there, so it is terminal and nothing
  after it is bootstrapped. Valid tokens must be contiguous (right or left padding).

  Args:
    rewards: f[B, T] (`per_token_rewards`).
    values: f[B, T], value-model predictions of the rollout.
    mask: f[B, T].
    gamma: discount in (0, 1].
    lam: GAE lambda in [0, 1].

  Returns:
    (advantages, returns): f32[B, T], returns = advantages + values; 0 at padding. Both are targets
    and carry no gradient.
  """
  _check_same_shape(rewards=rewards, values=values, mask=mask)
  valid = _f32(mask) != 0

  def step(carry, xs):
    next_value, next_advantage = carry
    reward, value, is_valid = xs
    delta = reward + gamma * next_value - value
    advantage = jnp.where(is_valid, delta + gamma * lam * next_advantage, 0.0)
    return (jnp.where(is_valid, value, 0.0), advantage), advantage

  zeros = jnp.zeros(valid.shape[:1], jnp.float32)
  # Time-major so the scan walks tokens; reverse=True keeps outputs in the original time order.
  xs = (_f32(rewards).T, _f32(values).T, valid.T)
  _, advantages = jax.lax.scan(step, (zeros, zeros), xs, reverse=True)
  advantages = advantages.T
  returns = jnp.where(valid, advantages + _f32(values), 0.0)
  return jax.lax.stop_gradient(advantages), jax.lax.stop_gradient(returns)


def ppo_policy_loss(logp: Array, old_logp: Array, advantages: Array, mask: Array,
                    clip_eps: float) -> Tuple[Array, Array, Array]:
  """PPO clipped surrogate loss, mean over valid tokens.

  Args:
    logp: f[B, T], current policy log-probs of the rollout tokens.
    old_logp: f[B, T], log-probs of the policy that sampled them.
    advantages: f[B, T], usually `masked_whiten`ed GAE advantages.
    mask: f[B, T].
    clip_eps: the ratio pi / pi_old is clipped to [1 - clip_eps, 1 + clip_eps].

  Returns:
    (loss, clip_fraction, approx_kl): f32 scalars. clip_fraction is the share of valid tokens where
    the clipped term is the larger loss, i.e. whose gradient clipping zeroes; approx_kl is the k3
    estimate of KL(pi_old || pi), a signal for early stopping.
  """
  _check_same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
  advantages = _f32(advantages)
  ratio = jnp.exp(_f32(logp) - _f32(old_logp))
  unclipped = -advantages * ratio
  clipped = -advantages * jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
  loss = masked_mean(jnp.maximum(unclipped, clipped), mask)
  clip_fraction = masked_mean((clipped > unclipped).astype(jnp.float32), mask)
  # The tokens were sampled from pi_old, so old_logp plays the part of `logp` in `kl_estimate`.
  approx_kl = masked_mean(kl_estimate(old_logp, jax.lax.stop_gradient(logp), "k3"), mask)
  return loss, clip_fraction, approx_kl


def value_loss(values: Array,
               old_values: Array,
               returns: Array,
               mask: Array,
               clip_eps: Optional[float] = None) -> Array:
  """Squared-error value loss, 0.5 * mean over valid tokens, optionally clipped as in PPO2.

  With `clip_eps`, the prediction is also evaluated clipped to old_values +- clip_eps and the larger
  of the two errors is used, so one update cannot move the value far from the rollout's values.

  Args:
    values: f[B, T], current value predictions.
    old_values: f[B, T], predictions at rollout time.
    returns: f[B, T], GAE returns.
    mask: f[B, T].
    clip_eps: None for the plain squared error.

  Returns:
    f32 scalar.
  """
  _check_same_shape(values=values, old_values=old_values, returns=returns, mask=mask)
  values, returns = _f32(values), _f32(returns)
  error = jnp.square(values - returns)
  if clip_eps is not None:
    old_values = _f32(old_values)
    clipped_values = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    error = jnp.maximum(error, jnp.square(clipped_values - returns))
  return 0.5 * masked_mean(error, mask)
