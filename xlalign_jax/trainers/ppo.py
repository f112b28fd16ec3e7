"""PPO with a KL penalty to the SFT policy, driven by a reward model of any language.

Four models are the same mT5 module with different parameters: the policy (trained, from the SFT
checkpoint), the frozen reference (the SFT parameters), the frozen reward model (of any source
language: the cross-lingual transfer setting is only a choice of REWARD_CHECKPOINT) and the value
model (a per-token scalar head, from the RM checkpoint or from SFT with a fresh head).

Each step samples one response per prompt, scores it with the RM (teacher-forced, read at the last
token), sets the per-token reward to that score at the last token minus beta * KL(policy || ref),
estimates advantages with GAE and runs K epochs of the clipped policy loss and the value loss. The
value model trains alone until `policy_start_step` (the paper: 2000 of 3000 steps). Rollout and
update are one jitted function each, with explicit shardings and donated training state, compiled
once per run. A resumed run equals an uninterrupted one: all state is in the orbax checkpoint, the
step's RNG is fold_in(seed, step) and the prompts resume at the batches consumed.

Reads top to bottom: configuration -> models -> rollout -> update -> the loop (metrics, guards,
checkpoints). Run: see gin_configs/experiments/ppo_tiny.gin.
"""
import dataclasses
import pathlib
import time
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from clu import metric_writers
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from xlalign_jax import (checkpoints, config_types, data_pipeline, decoding, feature_converters,
                         losses, partitioning, training)
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError
from xlalign_jax.network import Transformer
from xlalign_jax.trainers import loop, reward

# --------------------------------------------------------------------------------------------------
# Configuration.
# --------------------------------------------------------------------------------------------------


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PPOConfig:
  """A PPO run (gin_configs/runs/ppo.gin binds it; its header lists the required macros)."""
  model_dir: str = gin.REQUIRED
  train_steps: int = gin.REQUIRED
  prompts_task: str = gin.REQUIRED
  # {'inputs': prompt length, 'targets': response length (the sampler's max decode length)}.
  task_feature_lengths: Mapping[str, int] = gin.REQUIRED
  policy_checkpoint: str = gin.REQUIRED   # SFT: initial policy and frozen reference
  reward_checkpoint: str = gin.REQUIRED   # RM of any language, frozen
  mesh_config: partitioning.MeshConfig = gin.REQUIRED
  policy_optimizer: training.OptimizerConfig = gin.REQUIRED
  value_optimizer: training.OptimizerConfig = gin.REQUIRED
  batch_size: int = 32
  seed: int = 0
  checkpoint_period: int = 500
  keep_checkpoints: int = 3
  log_period: int = 10
  # The RL objective.
  kl_beta: float = 0.1                  # the KL penalty's coefficient (its start with kl_target)
  # Adaptive beta (Ziegler et al. 2019): after each step that updates the policy, beta moves
  # towards keeping the batch's mean sequence KL at kl_target, by at most 20% per kl_horizon
  # samples.
  kl_target: Optional[float] = None
  kl_horizon: int = 10000
  kl_estimator: str = "k1"              # k1 | k2 | k3 (losses.kl_estimate)
  reward_normalization: str = "none"    # none | running (mean/std over the run) | batch
  gamma: float = 1.0
  gae_lambda: float = 0.95
  whiten_advantages: bool = True
  # The PPO update.
  clip_eps: float = 0.2
  value_clip_eps: Optional[float] = None
  # Passes over each rollout batch. With one pass the policy being updated is still the one that
  # sampled, so the ratio is 1 and the clip never acts; 4 is lm-human-preferences' noptepochs.
  ppo_epochs: int = 4
  num_minibatches: int = 1
  policy_start_step: int = 0            # steps before it train the value model only
  value_init: str = "reward"            # reward (the RM checkpoint) | policy (SFT + fresh head)
  # With value_init "policy": how the fresh value head starts, "random" (the module's initialiser)
  # or "zeros" (needs an AdamW value_optimizer), every value 0 until the warm-up teaches it.
  value_head_init: str = "random"
  train_top_k_decoder_layers: Optional[int] = None  # Okapi: only the top k (and the LM head)
  temperature: float = 1.0
  # Guards: a sequence KL above max_kl is reported, and stops the run with stop_on_kl.
  max_kl: Optional[float] = None
  stop_on_kl: bool = False
  # Runtime settings that override the checkpoints' model configs (None keeps theirs).
  activation_dtype: Optional[str] = None
  remat: Optional[bool] = None

  def __post_init__(self):
    config_types.check_field_types(self)


REWARD_NORMALIZATIONS = ("none", "running", "batch")
_CHOICES = {"kl_estimator": ("k1", "k2", "k3"),
            "reward_normalization": REWARD_NORMALIZATIONS,
            "value_init": ("reward", "policy")}


def _validate(cfg: PPOConfig, mesh: Mesh) -> None:
  if cfg.train_steps <= 0:
    raise UserError(f"TRAIN_STEPS must be positive, got {cfg.train_steps}")
  missing = {"inputs", "targets"} - set(cfg.task_feature_lengths)
  if missing:
    raise UserError(f"TASK_FEATURE_LENGTHS needs {sorted(missing)} for PPO ('inputs': prompt "
                    f"length, 'targets': response length); got {dict(cfg.task_feature_lengths)}")
  for name, allowed in _CHOICES.items():
    if getattr(cfg, name) not in allowed:
      raise UserError(f"PPOConfig.{name} must be one of {allowed}, got {getattr(cfg, name)!r}")
  training.check_new_params_init(cfg.value_head_init, cfg.value_optimizer.name,
                                 "PPOConfig.value_head_init")
  if cfg.value_head_init != "random" and cfg.value_init != "policy":
    raise UserError(f"PPOConfig.value_head_init {cfg.value_head_init!r} needs value_init "
                    "'policy' (with 'reward' the value head is the reward model's, read from its "
                    "checkpoint)")
  if cfg.temperature <= 0:
    raise UserError(f"PPO samples from the policy: temperature must be > 0, got {cfg.temperature}")
  if cfg.kl_target is not None and (cfg.kl_target <= 0 or cfg.kl_horizon <= 0 or cfg.kl_beta <= 0):
    raise UserError(f"an adaptive KL penalty needs kl_target, kl_horizon and the initial kl_beta "
                    f"> 0; got {cfg.kl_target}, {cfg.kl_horizon} and {cfg.kl_beta}")
  if cfg.ppo_epochs < 1 or cfg.num_minibatches < 1 or cfg.batch_size % cfg.num_minibatches:
    raise UserError(f"need ppo_epochs >= 1 and batch size {cfg.batch_size} divisible into "
                    f"num_minibatches={cfg.num_minibatches}")
  partitioning.check_batch_size(cfg.batch_size // cfg.num_minibatches, mesh,
                                cfg.mesh_config.logical_axis_rules)


# --------------------------------------------------------------------------------------------------
# Models: policy, reference, reward model, value model.
# --------------------------------------------------------------------------------------------------


class Trained(NamedTuple):
  """The layout of a trained model: module, optimizer, and abstract state with shardings."""
  model: Transformer
  optimizer: optax.GradientTransformation
  abstract: Any
  shardings: Any
  abstract_opt: Any
  opt_shardings: Any


def _layout(model: Transformer, optimizer: optax.GradientTransformation, mesh: Mesh,
            rules) -> Trained:
  abstract, shardings = training.abstract_params(model, mesh, rules)
  opt_shardings = training.opt_state_shardings(optimizer, abstract, mesh)
  abstract_opt = training.with_shardings(jax.eval_shape(optimizer.init, abstract), opt_shardings)
  return Trained(model, optimizer, abstract, shardings, abstract_opt, opt_shardings)


def _model_config(path: str, cfg: PPOConfig) -> ModelConfig:
  overrides = {"dtype": cfg.activation_dtype, "remat": cfg.remat}
  return dataclasses.replace(checkpoints.load_model_config(path),
                             **{k: v for k, v in overrides.items() if v is not None})


def policy_optimizer(cfg: PPOConfig, model_config: ModelConfig) -> optax.GradientTransformation:
  """The policy's optimizer; with `train_top_k_decoder_layers` only the top k decoder layers and
  the LM head are updated (as trlx's `num_layers_unfrozen`, which Okapi uses) and only they carry
  optimizer state."""
  opt = training.make_optimizer(cfg.policy_optimizer)
  k = cfg.train_top_k_decoder_layers
  if k is None:
    return opt
  layers = model_config.num_decoder_layers
  if not 1 <= k <= layers:
    raise UserError(f"train_top_k_decoder_layers={k}: the policy has {layers} decoder layers")

  def labels(params):
    def label(path, _):
      names = [p.key for p in path]
      top = names[0] == "decoder" and (
          names[1] == "logits_dense" or
          (names[1].startswith("layers_") and int(names[1][len("layers_"):]) >= layers - k))
      return "train" if top else "frozen"
    return jax.tree_util.tree_map_with_path(label, params)

  return optax.multi_transform({"train": opt, "frozen": optax.set_to_zero()}, labels)


# Running reward statistics (count, mean, sum of squared deviations), replicated scalars.
_STATS = ("count", "mean", "m2")


def _normalize_scores(scores: jax.Array, stats: Dict[str, jax.Array],
                      kind: str) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """RM scores f32[B] -> standardised scores; "running" updates the run's statistics with this
  batch first (Chan et al.'s parallel update), "batch" uses this batch's alone."""
  if kind == "none":
    return scores, stats
  n = scores.shape[0]
  mean = jnp.mean(scores)
  m2 = jnp.sum(jnp.square(scores - mean))
  if kind == "batch":
    return (scores - mean) * jax.lax.rsqrt(m2 / n + 1e-8), stats
  count = stats["count"] + n
  delta = mean - stats["mean"]
  stats = {"count": count, "mean": stats["mean"] + delta * n / count,
           "m2": stats["m2"] + m2 + jnp.square(delta) * stats["count"] * n / count}
  return (scores - stats["mean"]) * jax.lax.rsqrt(stats["m2"] / count + 1e-8), stats


def adapt_kl_beta(beta: float, kl: float, step: int, cfg: PPOConfig) -> float:
  """The KL coefficient after (0-based) `step`: Ziegler et al.'s (2019) proportional controller,
  which multiplies beta by 1 + clip(kl / kl_target - 1, -0.2, 0.2) * batch_size / kl_horizon (on
  the host, in float64, so that a resumed run continues the same sequence); `beta` itself without
  kl_target, and while the value model warms up alone (the policy, not updated, has KL 0)."""
  if cfg.kl_target is None or step < cfg.policy_start_step:
    return beta
  error = min(max(kl / cfg.kl_target - 1.0, -0.2), 0.2)
  return beta * (1.0 + error * cfg.batch_size / cfg.kl_horizon)


def _step_keys(seed: int, step: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """(sampling key, minibatch-order key) of a step: a function of (seed, step) only."""
  keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), step))
  return keys[0], keys[1]


# --------------------------------------------------------------------------------------------------
# Rollout: sample, score, KL penalty, values, GAE.
# --------------------------------------------------------------------------------------------------

ROLLOUT_KEYS = ("prompts", "dec_in", "tokens", "mask", "logp", "values", "advantages", "returns")


def _masked_var(x: jax.Array, mask: jax.Array) -> jax.Array:
  return losses.masked_mean(jnp.square(x - losses.masked_mean(x, mask)), mask)


def make_rollout(cfg: PPOConfig, policy: Trained, value: Trained, rm_model: Transformer,
                 rm_shardings: Any, mesh: Mesh, rules):
  """Jitted `(policy, ref, rm, value params, reward stats, prompts, step, kl_beta) -> (rollout
  batch, reward stats, metrics)`; the batch holds ROLLOUT_KEYS, all `[B, ...]` and batch-sharded."""
  sampling = decoding.SamplingConfig(
      num_samples=1, max_decode_length=cfg.task_feature_lengths["targets"],
      temperature=cfg.temperature)

  def rollout(policy_params, ref_params, rm_params, value_params, stats, prompts, step, kl_beta):
    tokens = decoding.sample(policy.model, policy_params, prompts, _step_keys(cfg.seed, step)[0],
                             sampling).tokens[:, 0]
    dec_in = jnp.pad(tokens[:, :-1], ((0, 0), (1, 0)))  # shifted right with 0 first, as seqio
    mask = (tokens > 0).astype(jnp.float32)
    # Old log-probs teacher-forced (not the sampler's): the update recomputes them the same way,
    # so the first epoch's ratio is 1 and the KL to the unchanged reference is exactly 0.
    logits = policy.model.apply({"params": policy_params}, prompts, dec_in, tokens)
    logp = losses.token_log_probs(logits, tokens)
    ref_logp = losses.token_log_probs(
        policy.model.apply({"params": ref_params}, prompts, dec_in, tokens), tokens)
    scores = reward.rewards(rm_model, rm_params, prompts, dec_in, tokens)
    values = value.model.apply({"params": value_params}, prompts, dec_in, tokens)
    normalized, stats = _normalize_scores(scores, stats, cfg.reward_normalization)
    token_rewards = losses.per_token_rewards(normalized, logp, ref_logp, mask, kl_beta,
                                             cfg.kl_estimator)
    advantages, returns = losses.gae_advantages(token_rewards, values, mask, cfg.gamma,
                                                cfg.gae_lambda)
    if cfg.whiten_advantages:
      advantages = losses.masked_whiten(advantages, mask)
    kl = jnp.sum(jnp.where(mask > 0, losses.kl_estimate(logp, ref_logp, cfg.kl_estimator), 0.0),
                 axis=-1)
    returns_var = _masked_var(returns, mask)
    metrics = {
        "reward": jnp.mean(scores), "reward_std": jnp.std(scores),
        "kl": jnp.mean(kl), "kl_beta": kl_beta, "entropy": losses.entropy_from_logits(logits, mask),
        "response_length": jnp.mean(jnp.sum(mask, axis=-1)),
        "explained_variance": jnp.where(
            returns_var > 0, 1.0 - _masked_var(returns - values, mask) / returns_var, 0.0),
    }
    batch = dict(zip(ROLLOUT_KEYS, (prompts, dec_in, tokens, mask, logp, values, advantages,
                                    returns)))
    return batch, stats, metrics

  replicated = NamedSharding(mesh, PartitionSpec())
  batch_sh = partitioning.batch_sharding(mesh, rules, 2)
  jitted = jax.jit(
      rollout,
      in_shardings=(policy.shardings, policy.shardings, rm_shardings, value.shardings, replicated,
                    batch_sh, replicated, replicated),
      out_shardings=({k: batch_sh for k in ROLLOUT_KEYS}, replicated, replicated))

  def run(policy_params, ref_params, rm_params, value_params, stats, prompts, step, kl_beta):
    with partitioning.activate(mesh, rules):
      return jitted(policy_params, ref_params, rm_params, value_params, stats, prompts,
                    jnp.asarray(step, jnp.int32), jnp.asarray(kl_beta, jnp.float32))
  return run


# --------------------------------------------------------------------------------------------------
# Update: K epochs over minibatches of clipped policy loss + value loss.
# --------------------------------------------------------------------------------------------------

_POLICY_METRICS = ("loss", "grad_norm", "clip_fraction", "approx_kl")


def make_update(cfg: PPOConfig, policy: Trained, value: Trained, mesh: Mesh, rules):
  """Jitted `(policy params, policy opt, value params, value opt, rollout batch, step) -> (the
  four updated, metrics)`, donating the four. The policy is left as it is before
  `policy_start_step` (a `lax.cond`, so the whole run still compiles once)."""

  def forward(trained, params, mb):
    return trained.model.apply({"params": params}, mb["prompts"], mb["dec_in"], mb["tokens"])

  def policy_loss(params, mb):
    logp = losses.token_log_probs(forward(policy, params, mb), mb["tokens"])
    loss, clip_fraction, approx_kl = losses.ppo_policy_loss(logp, mb["logp"], mb["advantages"],
                                                            mb["mask"], cfg.clip_eps)
    return loss, {"clip_fraction": clip_fraction, "approx_kl": approx_kl}

  def value_loss(params, mb):
    loss = losses.value_loss(forward(value, params, mb), mb["values"], mb["returns"], mb["mask"],
                             cfg.value_clip_eps)
    return loss, {}

  def sgd_step(trained, loss_fn, params, opt_state, mb):
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
    updates, opt_state = trained.optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state,
            dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads)))

  def update(policy_params, policy_opt, value_params, value_opt, batch, step):
    train_policy = step >= cfg.policy_start_step

    def minibatch(carry, mb):
      policy_params, policy_opt, value_params, value_opt = carry
      value_params, value_opt, value_metrics = sgd_step(value, value_loss, value_params,
                                                        value_opt, mb)
      policy_params, policy_opt, policy_metrics = jax.lax.cond(
          train_policy,
          lambda p, o: sgd_step(policy, policy_loss, p, o, mb),
          lambda p, o: (p, o, {k: jnp.zeros((), jnp.float32) for k in _POLICY_METRICS}),
          policy_params, policy_opt)
      metrics = {**{f"policy_{k}": v for k, v in policy_metrics.items()},
                 **{f"value_{k}": v for k, v in value_metrics.items()}}
      return (policy_params, policy_opt, value_params, value_opt), metrics

    def epoch(carry, key):
      data = batch
      if cfg.num_minibatches > 1:
        order = jax.random.permutation(key, cfg.batch_size)
        data = jax.tree.map(lambda x: x[order], data)
      minibatches = jax.tree.map(
          lambda x: x.reshape((cfg.num_minibatches, -1) + x.shape[1:]), data)
      return jax.lax.scan(minibatch, carry, minibatches)

    keys = jax.random.split(_step_keys(cfg.seed, step)[1], cfg.ppo_epochs)
    state, metrics = jax.lax.scan(epoch, (policy_params, policy_opt, value_params, value_opt),
                                  keys)
    metrics = jax.tree.map(jnp.mean, metrics)
    # Finite losses and gradients can still make non-finite parameters (an infinite LR).
    metrics.update(policy_updated=train_policy.astype(jnp.float32),
                   policy_param_norm=optax.tree.norm(state[0]),
                   value_param_norm=optax.tree.norm(state[2]))
    return (*state, metrics)

  replicated = NamedSharding(mesh, PartitionSpec())
  batch_sh = {k: partitioning.batch_sharding(mesh, rules, 2) for k in ROLLOUT_KEYS}
  state_sh = (policy.shardings, policy.opt_shardings, value.shardings, value.opt_shardings)
  jitted = jax.jit(update, in_shardings=(*state_sh, batch_sh, replicated),
                   out_shardings=(*state_sh, replicated), donate_argnums=(0, 1, 2, 3))

  def run(policy_params, policy_opt, value_params, value_opt, batch, step):
    with partitioning.activate(mesh, rules):
      return jitted(policy_params, policy_opt, value_params, value_opt, batch,
                    jnp.asarray(step, jnp.int32))
  return run


# --------------------------------------------------------------------------------------------------
# The loop: metrics, guards, checkpoints.
# --------------------------------------------------------------------------------------------------

# Checked every step, before anything of the step is saved; the first non-finite one is named.
_GUARDED = ("reward", "value_loss", "value_grad_norm", "value_param_norm", "policy_loss",
            "policy_grad_norm", "policy_param_norm")


def _last_good(ckpt: checkpoints.TrainCheckpointer, cfg: PPOConfig) -> str:
  ckpt.wait()
  step = ckpt.latest_step()
  if step is None:
    return f"none yet (the run starts from {cfg.policy_checkpoint})"
  return f"step {step} in {ckpt.root}"


def _check_step(metrics: Dict[str, float], step: int, cfg: PPOConfig,
                ckpt: checkpoints.TrainCheckpointer, report, was_above: bool) -> None:
  """The guards: non-finite numbers stop the run; a KL past max_kl stops it (stop_on_kl) or is
  reported, once per stretch of steps above the bound (`was_above`: the step before was above it;
  the metric kl_exceeded marks every such step)."""
  for name in _GUARDED:
    if not np.isfinite(metrics[name]):
      raise UserError(f"{name} is {metrics[name]} at step {step}; stopped without saving it. "
                      f"Last good checkpoint: {_last_good(ckpt, cfg)}")
  metrics["kl_exceeded"] = float(cfg.max_kl is not None and metrics["kl"] > cfg.max_kl)
  if metrics["kl_exceeded"]:
    message = (f"KL to the reference is {metrics['kl']:.3f} at step {step}, above "
               f"max_kl={cfg.max_kl}")
    if cfg.stop_on_kl:
      raise UserError(f"{message} (stop_on_kl). Last good checkpoint: {_last_good(ckpt, cfg)}")
    if not was_above:
      logging.warning(message)
      report(f"warning: {message}; not repeated while it stays above")


def run(cfg: PPOConfig, mesh: Mesh) -> dict:
  """Train to `cfg.train_steps` on `mesh`, resuming from the latest checkpoint in `model_dir`.
  Returns the last step's metrics and the final policy parameters under "params"."""
  _validate(cfg, mesh)
  rules = cfg.mesh_config.logical_axis_rules
  converter = feature_converters.converter_for(data_pipeline.get_task(cfg.prompts_task))
  if not isinstance(converter, feature_converters.PromptsFeatureConverter):
    raise UserError(f"{cfg.prompts_task} is not a prompts task (PPO needs a task with only an "
                    "'inputs' feature, e.g. xlalign_v1.seahorse.en.prompts)")

  # ---- Models. ----
  policy_config = _model_config(cfg.policy_checkpoint, cfg)
  rm_config = _model_config(cfg.reward_checkpoint, cfg)
  if policy_config.vocab_size != rm_config.vocab_size:
    raise UserError(f"the policy {cfg.policy_checkpoint} has a vocabulary of "
                    f"{policy_config.vocab_size} ids but the reward model {cfg.reward_checkpoint} "
                    f"has {rm_config.vocab_size}; they must share one")
  if not checkpoints.has_param(cfg.reward_checkpoint, reward.HEAD):
    raise UserError(f"{cfg.reward_checkpoint} has no reward head ({reward.HEAD}): not a "
                    "reward-model checkpoint")
  policy = _layout(training.build_model(policy_config), policy_optimizer(cfg, policy_config),
                   mesh, rules)
  value = _layout(
      training.build_model(rm_config if cfg.value_init == "reward" else policy_config,
                           score_head=True),
      training.make_optimizer(cfg.value_optimizer), mesh, rules)
  rm_model = training.build_model(rm_config, score_head=True)
  rm_abstract, rm_shardings = training.abstract_params(rm_model, mesh, rules)
  ref_params = checkpoints.restore_params(cfg.policy_checkpoint, policy.abstract)
  rm_params = checkpoints.restore_params(cfg.reward_checkpoint, rm_abstract)

  # ---- Training state: resume > initial checkpoints. ----
  replicated = NamedSharding(mesh, PartitionSpec())
  abstract_stats = {k: jax.ShapeDtypeStruct((), jnp.float32, sharding=replicated) for k in _STATS}
  ckpt = checkpoints.TrainCheckpointer(cfg.model_dir, policy_config, cfg.checkpoint_period,
                                       cfg.keep_checkpoints)
  start_step = ckpt.latest_step() or 0
  loop.prepare_model_dir(cfg, start_step)
  if start_step:
    policy_params, policy_opt, meta, extra = ckpt.restore(
        start_step, policy.abstract, policy.abstract_opt,
        extra={"value_params": value.abstract, "value_opt_state": value.abstract_opt,
               "reward_stats": abstract_stats})
    value_params, value_opt, stats = (extra["value_params"], extra["value_opt_state"],
                                      extra["reward_stats"])
    print(f"resuming from checkpoint step {start_step} in {ckpt.root}", flush=True)
  else:
    policy_params = checkpoints.restore_params(cfg.policy_checkpoint, policy.abstract)
    if cfg.value_init == "reward":
      value_params = checkpoints.restore_params(cfg.reward_checkpoint, value.abstract)
    else:
      value_params = training.initial_params(value.model, cfg.seed, mesh, rules, value.abstract,
                                             cfg.policy_checkpoint, (reward.HEAD,),
                                             cfg.value_head_init)
    policy_opt = training.init_opt_state(policy.optimizer, policy_params, policy.shardings,
                                         policy.opt_shardings, mesh, rules)
    value_opt = training.init_opt_state(value.optimizer, value_params, value.shardings,
                                        value.opt_shardings, mesh, rules)
    stats = {k: jax.device_put(jnp.zeros((), jnp.float32), replicated) for k in _STATS}
    meta = {}
  print(f"policy: {training.count_params(policy.abstract):,} parameters, reward model: "
        f"{training.count_params(rm_abstract):,}, value model: "
        f"{training.count_params(value.abstract):,}; mesh {dict(mesh.shape)}", flush=True)

  # ---- Prompts: deterministic order, resumed at the consumed batch. ----
  prompts_iter = data_pipeline.train_batches(
      cfg.prompts_task, {"inputs": cfg.task_feature_lengths["inputs"]}, cfg.batch_size, cfg.seed,
      meta.get("data_batches_consumed", 0), converter)

  rollout_fn = make_rollout(cfg, policy, value, rm_model, rm_shardings, mesh, rules)
  update_fn = make_update(cfg, policy, value, mesh, rules)
  writer = metric_writers.create_default_writer(
      str(pathlib.Path(cfg.model_dir) / "tensorboard"), just_logging=jax.process_index() > 0,
      asynchronous=False)

  # ---- Steps. ----
  bar = tqdm(range(start_step, cfg.train_steps), initial=start_step, total=cfg.train_steps,
             desc="ppo", unit="step", dynamic_ncols=True, disable=jax.process_index() > 0)
  metrics = {}
  steps_above_kl, was_above = 0, False  # of the steps run by this process
  kl_beta = meta.get("kl_beta", cfg.kl_beta)  # the next step's
  for step in bar:
    t0 = time.time()
    prompts = partitioning.shard_batch(next(prompts_iter), mesh, rules)["encoder_input_tokens"]
    batch, stats, rollout_metrics = rollout_fn(policy_params, ref_params, rm_params,
                                               value_params, stats, prompts, step, kl_beta)
    policy_params, policy_opt, value_params, value_opt, update_metrics = update_fn(
        policy_params, policy_opt, value_params, value_opt, batch, step)
    metrics = {k: float(v) for k, v in
               jax.device_get({**rollout_metrics, **update_metrics}).items()}
    metrics["step_seconds"] = time.time() - t0
    done = step + 1
    _check_step(metrics, done, cfg, ckpt, bar.write, was_above)
    was_above = bool(metrics["kl_exceeded"])
    steps_above_kl += was_above
    kl_beta = adapt_kl_beta(kl_beta, metrics["kl"], step, cfg)
    writer.write_scalars(done, metrics)
    bar.set_postfix(reward=f"{metrics['reward']:.3f}", kl=f"{metrics['kl']:.3f}")
    if done % cfg.log_period == 0 or done == cfg.train_steps:
      bar.write(f"step {done}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    if ckpt.should_save(done, cfg.train_steps):
      ckpt.save(done, policy_params, policy_opt, {"data_batches_consumed": done,
                                                  "metrics": metrics, "kl_beta": kl_beta},
                extra={"value_params": value_params, "value_opt_state": value_opt,
                       "reward_stats": stats})
  ckpt.wait()
  writer.flush()
  bar.close()
  if steps_above_kl:
    print(f"KL to the reference was above max_kl={cfg.max_kl} on {steps_above_kl} of the "
          f"{cfg.train_steps - start_step} steps run now", flush=True)
  return dict(metrics, params=policy_params)


@gin.configurable(module="ppo")
def train(config: PPOConfig = gin.REQUIRED) -> dict:
  partitioning.maybe_initialize_distributed(config.mesh_config)
  return run(config, partitioning.create_mesh(config.mesh_config))
