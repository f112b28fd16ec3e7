"""The supervised training loop shared by SFT and reward-model training.

Reads top to bottom: mesh -> model state (initialised sharded, or restored for resume, or loaded
from an initial checkpoint) -> data (resuming at the consumed batch) -> steps with periodic
validation, metrics (TensorBoard + console progress bar with ETA) and orbax checkpoints.
"""
import dataclasses
import json
import pathlib
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import gin
import jax
import numpy as np
import seqio
from absl import logging
from clu import metric_writers
from tqdm import tqdm

from xlalign_jax import (checkpoints, config_types, data_pipeline, fileio, partitioning,
                         provenance, training)
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError
from xlalign_jax.network import Transformer


@gin.configurable
@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """Everything a supervised run needs besides the loss (runs/sft.gin, runs/rm.gin bind it)."""
  model_dir: str = gin.REQUIRED
  train_steps: int = gin.REQUIRED
  mixture_or_task_name: str = gin.REQUIRED
  task_feature_lengths: Mapping[str, int] = gin.REQUIRED
  model_config: ModelConfig = gin.REQUIRED
  mesh_config: partitioning.MeshConfig = gin.REQUIRED
  optimizer_config: training.OptimizerConfig = gin.REQUIRED
  batch_size: int = 32
  checkpoint_period: int = 1000
  keep_checkpoints: int = 3
  eval_period: int = 100
  eval_examples: Optional[int] = 512
  initial_checkpoint_path: Optional[str] = None
  seed: int = 0
  num_microbatches: int = 1
  new_params_init: str = "random"  # how run()'s `new_params` (an RM's head) start: random | zeros

  def __post_init__(self):
    config_types.check_field_types(self)


def write_config_gin(model_dir: str) -> None:
  """The run's complete gin configuration, next to its results."""
  if jax.process_index() == 0:
    path = pathlib.Path(model_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.gin").write_text(gin.config_str())


# Settings a resumed run may change: where and how long it runs, how often it saves, evaluates or
# logs, how it spreads over devices and memory; not what it computes (a prefix covers its fields).
RESUME_NEUTRAL_SETTINGS = frozenset({
    "model_dir", "train_steps", "checkpoint_period", "keep_checkpoints", "eval_period",
    "log_period", "mesh_config", "num_microbatches", "remat", "model_config.remat", "max_kl",
    "stop_on_kl"})
RUN_SETTINGS_FILE = "run_settings.json"


def result_settings(cfg: Any) -> Dict[str, Any]:
  """The settings of a run config (LoopConfig, PPOConfig) that its results depend on, flattened
  to dotted names ("optimizer_config.learning_rate") and made JSON-comparable."""
  flat = {}

  def walk(prefix: str, value: Any) -> None:
    if isinstance(value, dict):
      for key, item in value.items():
        walk(f"{prefix}{key}.", item)
    else:
      flat[prefix[:-1]] = value

  walk("", provenance.plain_settings(cfg))
  return {k: v for k, v in flat.items()
          if not any(k == n or k.startswith(n + ".") for n in RESUME_NEUTRAL_SETTINGS)}


def prepare_model_dir(cfg: Any, resume_step: int) -> None:
  """Refuses to resume a run in `cfg.model_dir` with other result settings than the run that
  saved its checkpoints (the checkpoints would hold two runs' mixture), then records this run's
  settings and gin configuration there."""
  path = pathlib.Path(cfg.model_dir) / RUN_SETTINGS_FILE
  current = result_settings(cfg)
  if resume_step and path.exists():
    recorded = json.loads(path.read_text())
    changed = provenance.changed_settings(recorded, current, sorted(recorded))
    if changed:
      raise UserError(
          f"{cfg.model_dir} holds a run at step {resume_step} trained with {', '.join(changed)}; "
          f"resuming would mix two runs. Use another MODEL_DIR, or delete {path} to continue "
          "with the new settings on purpose")
  else:
    fileio.write_text(path, json.dumps(current, indent=2, sort_keys=True))
  write_config_gin(cfg.model_dir)


def run(cfg: LoopConfig, model: Transformer, loss_fn: Callable[[Transformer], training.LossFn],
        feature_converter: seqio.FeatureConverter, new_params: Tuple[str, ...] = (),
        keep_best: bool = False) -> dict:
  """Train to `cfg.train_steps`, resuming from the latest checkpoint in `cfg.model_dir`.

  `new_params`: top-level-path prefixes (e.g. "decoder/score_head") that an initial checkpoint
  may lack; they start from `cfg.new_params_init` (their fresh initialisation, or zeros).
  `keep_best`: also keep the parameters with the lowest validation loss in `<model_dir>/best`
  (what `--checkpoint MODEL_DIR` then reads).
  Returns the last validation metrics and the final parameters under "params".
  """
  if cfg.train_steps <= 0:
    raise UserError(f"TRAIN_STEPS must be positive, got {cfg.train_steps}")
  if cfg.num_microbatches < 1 or cfg.batch_size % cfg.num_microbatches:
    raise UserError(f"batch size {cfg.batch_size} is not divisible into {cfg.num_microbatches} "
                    "microbatches")
  training.check_new_params_init(cfg.new_params_init, cfg.optimizer_config.name)
  partitioning.maybe_initialize_distributed(cfg.mesh_config)
  mesh = partitioning.create_mesh(cfg.mesh_config)
  rules = cfg.mesh_config.logical_axis_rules
  partitioning.check_batch_size(cfg.batch_size // cfg.num_microbatches, mesh, rules)
  ckpt = checkpoints.TrainCheckpointer(cfg.model_dir, cfg.model_config, cfg.checkpoint_period,
                                       cfg.keep_checkpoints)
  start_step = ckpt.latest_step() or 0
  prepare_model_dir(cfg, start_step)

  # ---- Model state: resume > initial checkpoint > fresh sharded init. ----
  optimizer = training.make_optimizer(cfg.optimizer_config)
  abstract, param_shardings = training.abstract_params(model, mesh, rules)
  opt_shardings = training.opt_state_shardings(optimizer, abstract, mesh)
  abstract_opt = training.with_shardings(jax.eval_shape(optimizer.init, abstract), opt_shardings)
  if start_step:
    params, opt_state, meta = ckpt.restore(start_step, abstract, abstract_opt)
    logging.info("resumed from step %d", start_step)
    print(f"resuming from checkpoint step {start_step} in {ckpt.root}", flush=True)
  else:
    params = training.initial_params(model, cfg.seed, mesh, rules, abstract,
                                     cfg.initial_checkpoint_path, new_params, cfg.new_params_init)
    opt_state = training.init_opt_state(optimizer, params, param_shardings, opt_shardings, mesh,
                                        rules)
    meta = {}
  print(f"model: {training.count_params(abstract):,} parameters; mesh {dict(mesh.shape)}",
        flush=True)

  # ---- Data: deterministic order, resumed at the consumed batch. ----
  train_iter = data_pipeline.train_batches(cfg.mixture_or_task_name, cfg.task_feature_lengths,
                                           cfg.batch_size, cfg.seed, start_step,
                                           feature_converter)
  eval_set = data_pipeline.eval_batches(cfg.mixture_or_task_name, cfg.task_feature_lengths,
                                        cfg.batch_size, feature_converter,
                                        max_examples=cfg.eval_examples)
  first = next(train_iter)
  batch_shardings = {k: partitioning.batch_sharding(mesh, rules, v.ndim) for k, v in first.items()}

  step_fn = training.make_train_step(loss_fn(model), optimizer, cfg.seed, cfg.num_microbatches,
                                     param_shardings, opt_shardings, batch_shardings, mesh, rules)
  eval_fn = training.make_eval_step(loss_fn(model), param_shardings, batch_shardings, mesh, rules)

  def evaluate(p) -> dict:
    totals = None
    for batch in eval_set:
      out = jax.device_get(eval_fn(p, partitioning.shard_batch(batch, mesh, rules)))
      totals = out if totals is None else jax.tree.map(np.add, totals, out)
    loss_sum, weight_sum, metric_sums = totals
    weight = max(float(weight_sum), 1e-8)
    metrics = {f"validation_{k}": float(v) / weight for k, v in metric_sums.items()}
    return {"validation_loss": float(loss_sum) / weight, **metrics}

  writer = metric_writers.create_default_writer(
      str(pathlib.Path(cfg.model_dir) / "tensorboard"), just_logging=jax.process_index() > 0,
      asynchronous=False)

  # ---- Steps. ----
  eval_metrics = meta.get("eval_metrics", {})
  best_loss = meta.get("best_validation_loss", float("inf"))
  if start_step == 0:
    eval_metrics = evaluate(params)
    writer.write_scalars(0, eval_metrics)
    print("step 0: " + ", ".join(f"{k}={v:.4f}" for k, v in eval_metrics.items()), flush=True)
  batch = first
  bar = tqdm(range(start_step, cfg.train_steps), initial=start_step, total=cfg.train_steps,
             desc="train", unit="step", dynamic_ncols=True, disable=jax.process_index() > 0)
  tokens_per_step = sum(v.size for k, v in first.items() if k.endswith("tokens")
                        ) * jax.process_count()
  t0 = time.time()
  for step in bar:
    params, opt_state, metrics = step_fn(params, opt_state,
                                         partitioning.shard_batch(batch, mesh, rules), step)
    done = step + 1
    if done % cfg.eval_period == 0 or done == cfg.train_steps:
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      if not np.isfinite(metrics["loss"]):
        raise UserError(f"loss is {metrics['loss']} at step {done}; last good checkpoint: "
                        f"{ckpt.latest_step()} in {ckpt.root}")
      eval_metrics = evaluate(params)
      elapsed = time.time() - t0
      metrics.update(eval_metrics,
                     tokens_per_second=tokens_per_step * (done - start_step) / max(elapsed, 1e-9))
      writer.write_scalars(done, metrics)
      bar.set_postfix(loss=f"{metrics['loss']:.4f}", val=f"{eval_metrics['validation_loss']:.4f}")
      if keep_best and eval_metrics["validation_loss"] < best_loss:
        best_loss = eval_metrics["validation_loss"]
        ckpt.wait()  # multi-host: two checkpoint managers saving at once deadlock on a barrier
        checkpoints.save_params(str(pathlib.Path(cfg.model_dir) / "best"), params,
                                cfg.model_config, step=0,
                                meta={"trained_steps": done, "eval_metrics": eval_metrics})
      bar.write(f"step {done}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    if ckpt.should_save(done, cfg.train_steps):
      ckpt.save(done, params, opt_state, {"data_batches_consumed": done,
                                          "eval_metrics": eval_metrics,
                                          "best_validation_loss": best_loss})
    if done < cfg.train_steps:
      batch = next(train_iter)
  ckpt.wait()
  writer.flush()
  bar.close()
  return dict(eval_metrics, params=params)
