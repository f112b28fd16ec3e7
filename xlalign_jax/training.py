"""What every trainer shares: the optimizer, sharded model state, and the jitted train step.

The step is `jax.jit` with explicit in/out shardings and donated params/optimizer state (pjit
semantics); gradients are accumulated over microbatches with `lax.scan`; the dropout RNG is
`fold_in(seed, step)`, so a resumed run draws exactly the numbers an uninterrupted one would.
"""
import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xlalign_jax import adafactor, checkpoints, config_types, partitioning
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError
from xlalign_jax.network import Transformer

Batch = Dict[str, jax.Array]
# loss_fn(params, batch, dropout_rng) -> (loss_sum, weight_sum, metrics_dict_of_sums)
LossFn = Callable[[Any, Batch, jax.Array], Tuple[jax.Array, jax.Array, Dict[str, jax.Array]]]


@gin.configurable
@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """Adafactor (the paper's, T5X's) or AdamW (Okapi's); linear warm-up then constant LR."""
  name: str = "adafactor"
  learning_rate: float = 1e-3
  warmup_steps: int = 0
  weight_decay: float = 0.0
  grad_clip_norm: Optional[float] = None

  def __post_init__(self):
    config_types.check_field_types(self)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
  if config.warmup_steps > 0:
    lr = optax.join_schedules(
        [optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps),
         optax.constant_schedule(config.learning_rate)], [config.warmup_steps])
  else:
    lr = config.learning_rate
  if config.name == "adafactor":
    opt = adafactor.adafactor(lr, weight_decay_rate=config.weight_decay or None)
  elif config.name == "adamw":
    opt = optax.adamw(lr, weight_decay=config.weight_decay)
  else:
    raise UserError(f"unknown optimizer {config.name!r} (OptimizerConfig.name: adafactor or adamw)")
  if config.grad_clip_norm:
    opt = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), opt)
  return opt


# How the parameters that an initial checkpoint lacks (an RM's score head) start:
# "random", the module's own initialiser, or "zeros", so that the first reward is 0 for every
# response and the head learns a direction from the SFT features before the backbone moves.
NEW_PARAMS_INITS = ("random", "zeros")


def check_new_params_init(init: str, optimizer_name: str,
                          setting: str = "LoopConfig.new_params_init") -> None:
  if init not in NEW_PARAMS_INITS:
    raise UserError(f"{setting} {init!r} is not one of {', '.join(NEW_PARAMS_INITS)}")
  if init == "zeros" and optimizer_name == "adafactor":
    # Adafactor scales each step by the parameter's RMS, floored at 1e-3: a zero head barely moves
    # (research/rm_sweep/README.md, session 14: every row scored No after 250 steps).
    raise UserError(f"{setting} 'zeros' needs AdamW: under Adafactor, whose steps scale with the "
                    "parameter's size, a zero-initialised score head does not move")


def zero_subtrees(params: Any, prefixes: Tuple[str, ...]) -> Any:
  """`params` with every leaf under one of the '/'-joined path `prefixes` set to zero (shardings
  kept)."""
  def zero(path, leaf):
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    return leaf * 0 if any(name == p or name.startswith(p + "/") for p in prefixes) else leaf
  return jax.tree_util.tree_map_with_path(zero, params)


def initial_params(model: Transformer, seed: int, mesh: Mesh, rules, abstract: Any,
                   checkpoint: Optional[str] = None, new_params: Tuple[str, ...] = (),
                   new_params_init: str = "random") -> Any:
  """A run's starting parameters: a fresh sharded init, or every parameter from `checkpoint` but
  the `new_params` subtrees it may lack (e.g. an RM's or value model's head over an SFT
  checkpoint), which alone are initialised. New subtrees start at zero when `new_params_init` is
  'zeros'."""
  rng = jax.random.PRNGKey(seed)
  if not checkpoint:
    params, _ = partitioning.sharded_init(model_init_fn(model), rng, mesh, rules)
    return zero_subtrees(params, new_params) if new_params_init == "zeros" else params
  fresh = {}
  if new_params:
    fresh, _ = partitioning.sharded_init(
        model_init_fn(model), rng, mesh, rules,
        select=lambda tree: checkpoints.split_subtrees(tree, new_params)[1])
    if new_params_init == "zeros":
      fresh = jax.tree.map(lambda leaf: leaf * 0, fresh)
  return checkpoints.restore_params(checkpoint, abstract, fresh=fresh, new_params=new_params)


def dummy_batch(input_length: int, target_length: int, batch_size: int = 1):
  enc = jnp.ones((batch_size, input_length), jnp.int32)
  dec = jnp.ones((batch_size, target_length), jnp.int32)
  return enc, dec, dec


def model_init_fn(model: Transformer, input_length: int = 8, target_length: int = 8):
  """rng -> params tree with logical-axis metadata (shapes don't depend on lengths)."""
  def init(rng):
    return model.init(rng, *dummy_batch(input_length, target_length))["params"]
  return init


def abstract_params(model: Transformer, mesh: Mesh, rules) -> Tuple[Any, Any]:
  """(ShapeDtypeStructs carrying shardings, shardings) of the model's params, without memory."""
  boxed = jax.eval_shape(model_init_fn(model), jax.random.PRNGKey(0))
  shardings = partitioning.logical_shardings(boxed, mesh, rules)
  shapes = nn.unbox(boxed)
  abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          shapes, shardings)
  return abstract, shardings


def opt_state_shardings(optimizer: optax.GradientTransformation, abstract: Any, mesh: Mesh) -> Any:
  """Optimizer-state leaves shaped like their parameter share its sharding; factored or scalar
  statistics (Adafactor rows/columns, counts) are small and replicated.

  A state leaf's parameter is the one named by the trailing dict keys of its path: optax keeps a
  params-shaped tree under each state field, also inside masked and multi-transform states (whose
  masked-out entries hold no leaves).
  """
  replicated = NamedSharding(mesh, PartitionSpec())
  by_name = {_trailing_dict_keys(path): leaf
             for path, leaf in jax.tree_util.tree_leaves_with_path(abstract)}

  def for_leaf(path, state_leaf):
    param = by_name.get(_trailing_dict_keys(path))
    if param is not None and getattr(state_leaf, "shape", None) == param.shape:
      return param.sharding
    return replicated

  return jax.tree_util.tree_map_with_path(for_leaf, jax.eval_shape(optimizer.init, abstract))


def _trailing_dict_keys(path) -> Tuple[str, ...]:
  keys = []
  for entry in reversed(path):
    if not isinstance(entry, jax.tree_util.DictKey):
      break
    keys.append(entry.key)
  return tuple(reversed(keys))


def with_shardings(shapes: Any, shardings: Any) -> Any:
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      shapes, shardings)


def init_opt_state(optimizer: optax.GradientTransformation, params: Any, param_shardings: Any,
                   opt_shardings: Any, mesh: Mesh, rules) -> Any:
  """The optimizer state, created directly in its sharded layout."""
  with partitioning.activate(mesh, rules):
    return jax.jit(optimizer.init, in_shardings=(param_shardings,),
                   out_shardings=opt_shardings)(params)


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, seed: int,
                    num_microbatches: int, param_shardings: Any, opt_shardings: Any,
                    batch_shardings: Any, mesh: Mesh, rules):
  """Jitted `(params, opt_state, batch, step) -> (params, opt_state, metrics)`.

  The loss is the sum over the global batch divided by the total weight, so microbatching and
  sharding give the same update as one big batch.
  """
  def grads_and_sums(params, batch, rng):
    def fn(p):
      loss_sum, weight_sum, metrics = loss_fn(p, batch, rng)
      return loss_sum, (weight_sum, metrics)
    (loss_sum, (weight_sum, metrics)), grads = jax.value_and_grad(fn, has_aux=True)(params)
    return grads, loss_sum, weight_sum, metrics

  def step_fn(params, opt_state, batch, step):
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), step)
    if num_microbatches == 1:
      grads, loss_sum, weight_sum, metrics = grads_and_sums(params, batch, rng)
    else:
      micro = jax.tree.map(
          lambda x: x.reshape((num_microbatches, x.shape[0] // num_microbatches) + x.shape[1:]),
          batch)

      def body(carry, inputs):
        i, mb = inputs
        out = grads_and_sums(params, mb, jax.random.fold_in(rng, i))
        return jax.tree.map(jnp.add, carry, out), None

      zeros = jax.tree.map(jnp.zeros_like,
                           jax.eval_shape(grads_and_sums, params,
                                          jax.tree.map(lambda x: x[0], micro), rng))
      (grads, loss_sum, weight_sum, metrics), _ = jax.lax.scan(
          body, zeros, (jnp.arange(num_microbatches), micro))
    denom = jnp.maximum(weight_sum, 1e-8)
    grads = jax.tree.map(lambda g: g / denom, grads)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = {k: v / denom for k, v in metrics.items()}
    metrics.update(loss=loss_sum / denom, weight=weight_sum, grad_norm=optax.tree.norm(grads))
    return params, opt_state, metrics

  replicated = NamedSharding(mesh, PartitionSpec())
  jitted = jax.jit(step_fn,
                   in_shardings=(param_shardings, opt_shardings, batch_shardings, replicated),
                   out_shardings=(param_shardings, opt_shardings, replicated),
                   donate_argnums=(0, 1))

  def run(params, opt_state, batch, step):
    with partitioning.activate(mesh, rules):
      return jitted(params, opt_state, batch, jnp.asarray(step, jnp.int32))
  return run


def make_eval_step(loss_fn: LossFn, param_shardings: Any, batch_shardings: Any, mesh: Mesh, rules):
  """Jitted `(params, batch) -> (loss_sum, weight_sum, metric_sums)` in deterministic mode."""
  replicated = NamedSharding(mesh, PartitionSpec())
  jitted = jax.jit(lambda p, b: loss_fn(p, b, None),
                   in_shardings=(param_shardings, batch_shardings), out_shardings=replicated)

  def run(params, batch):
    with partitioning.activate(mesh, rules):
      return jitted(params, batch)
  return run


def count_params(tree: Any) -> int:
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))


def build_model(config: ModelConfig, score_head: bool = False) -> Transformer:
  return Transformer(config, score_head=score_head)


@dataclasses.dataclass
class LoadedModel:
  """A checkpoint restored onto a mesh for inference (scoring, sampling)."""
  config: ModelConfig
  model: Transformer
  params: Any
  param_shardings: Any
  mesh: Mesh
  rules: Any
  batch_size: int  # the requested batch rounded up to the data-parallel shards (padding rows)


def load_for_inference(checkpoint: str, batch_size: int, mesh_config: partitioning.MeshConfig,
                       score_head: bool = False) -> LoadedModel:
  partitioning.maybe_initialize_distributed(mesh_config)  # before anything touches devices
  config = checkpoints.load_model_config(checkpoint)
  mesh = partitioning.create_mesh(mesh_config)
  rules = mesh_config.logical_axis_rules
  divisor = partitioning.batch_size_divisor(mesh, rules)
  model = build_model(config, score_head=score_head)
  abstract, shardings = abstract_params(model, mesh, rules)
  params = checkpoints.restore_params(checkpoint, abstract)
  return LoadedModel(config, model, params, shardings, mesh, rules,
                     -(-batch_size // divisor) * divisor)
