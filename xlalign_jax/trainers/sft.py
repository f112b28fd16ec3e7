"""Supervised fine-tuning: teacher-forced token cross-entropy on a seqio task.

Run: xlalign train --gin_file=gin_configs/experiments/smoke_sft.gin --gin.MODEL_DIR=/tmp/sft
"""
from typing import Mapping, Optional

import gin
import jax
import seqio

from xlalign_jax import losses, partitioning, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.trainers import loop


def lm_loss_fn(model):
  """(params, batch, rng) -> (loss_sum, weight_sum, {}) for EncDecFeatureConverter batches."""
  def loss_fn(params, batch, rng):
    deterministic = rng is None
    logits = model.apply(
        {"params": params}, batch["encoder_input_tokens"], batch["decoder_input_tokens"],
        batch["decoder_target_tokens"], deterministic=deterministic,
        rngs=None if deterministic else {"dropout": rng})
    loss_sum, weight_sum = losses.cross_entropy_loss(
        logits, batch["decoder_target_tokens"], batch["decoder_loss_weights"])
    return loss_sum, weight_sum, {}
  return loss_fn


@gin.configurable(module="sft")
def train(*, model_dir: str = gin.REQUIRED, train_steps: int = gin.REQUIRED,
          mixture_or_task_name: str = gin.REQUIRED,
          task_feature_lengths: Mapping[str, int] = gin.REQUIRED, batch_size: int = 32,
          checkpoint_period: int = 1000, keep_checkpoints: int = 3, eval_period: int = 100,
          eval_examples: Optional[int] = 512, initial_checkpoint_path: Optional[str] = None,
          seed: int = 0, num_microbatches: int = 1,
          model_config: ModelConfig = gin.REQUIRED,
          mesh_config: partitioning.MeshConfig = gin.REQUIRED,
          optimizer_config: training.OptimizerConfig = gin.REQUIRED) -> dict:
  cfg = loop.LoopConfig(
      model_dir=model_dir, train_steps=train_steps, mixture_or_task_name=mixture_or_task_name,
      task_feature_lengths=dict(task_feature_lengths), batch_size=batch_size,
      checkpoint_period=checkpoint_period, keep_checkpoints=keep_checkpoints,
      eval_period=eval_period, eval_examples=eval_examples,
      initial_checkpoint_path=initial_checkpoint_path or None, seed=seed,
      num_microbatches=num_microbatches, model_config=model_config, mesh_config=mesh_config,
      optimizer_config=optimizer_config)
  model = training.build_model(model_config)
  return loop.run(cfg, model, lm_loss_fn, seqio.EncDecFeatureConverter(pack=False))
