"""Supervised fine-tuning: teacher-forced token cross-entropy on a seqio task.

Run: xlalign train --gin_file=gin_configs/experiments/smoke_sft.gin --gin.MODEL_DIR=/tmp/sft
"""
import gin
import seqio

from xlalign_jax import losses, training
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
def train(config: loop.LoopConfig = gin.REQUIRED) -> dict:
  model = training.build_model(config.model_config)
  return loop.run(config, model, lm_loss_fn, seqio.EncDecFeatureConverter(pack=False))
