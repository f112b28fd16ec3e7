"""Reward-model training: the SFT backbone plus a scalar head, read at the response's last token.

The encoder reads the input x, the decoder is teacher-forced on the response y, and the reward is
the head's output at y's last token (EOS). Pointwise tasks (Seahorse question 6: inputs, targets,
label) train with binary cross-entropy; pairwise tasks (OpenAssistant ranks: inputs, chosen,
rejected) with Bradley-Terry. Which one follows from the task's features.

Run: xlalign train --gin_file=gin_configs/experiments/<experiment using runs/rm.gin>
"""
from typing import TYPE_CHECKING

import gin
import jax
import jax.numpy as jnp

from xlalign_jax import losses, training

if TYPE_CHECKING:  # the loop imports the data pipeline, which needs TensorFlow
  from xlalign_jax.trainers import loop

HEAD = "decoder/score_head"


def reward_at_last_token(scores: jax.Array, target_tokens: jax.Array) -> jax.Array:
  """scores f[B, T], target_tokens int[B, T] (right-padded) -> f[B]: the score at the last real
  token. An empty response reads position 0."""
  last = jnp.maximum(jnp.sum(target_tokens > 0, axis=-1) - 1, 0)
  return jnp.take_along_axis(scores, last[:, None], axis=-1)[:, 0]


def rewards(model, params, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
            rng=None):
  """Rewards f[B*n] for n responses per input (decoder rows grouped n per encoder row)."""
  deterministic = rng is None
  scores = model.apply({"params": params}, encoder_input_tokens, decoder_input_tokens,
                       decoder_target_tokens, deterministic=deterministic,
                       rngs=None if deterministic else {"dropout": rng})
  return reward_at_last_token(scores, decoder_target_tokens)


def _row_weights(batch) -> jax.Array:
  # Evaluation pads its last batch with all-zero rows: they carry no weight.
  return (jnp.sum(batch["encoder_input_tokens"] > 0, axis=-1) > 0).astype(jnp.float32)


def pointwise_loss_fn(model):
  def loss_fn(params, batch, rng):
    r = rewards(model, params, batch["encoder_input_tokens"], batch["decoder_input_tokens"],
                batch["decoder_target_tokens"], rng)
    w = _row_weights(batch)
    label = batch["label"].astype(jnp.float32)
    weight_sum = jnp.sum(w)
    loss_sum = losses.pointwise_bce_loss(r, label, w) * weight_sum
    correct = jnp.sum(((r > 0) == (label > 0.5)) * w)
    return loss_sum, weight_sum, {"accuracy": correct}
  return loss_fn


def pairwise_loss_fn(model):
  def loss_fn(params, batch, rng):
    # Chosen and rejected interleaved as 2 decoder rows per input: one encoder pass for both.
    def both(name):
      return jnp.stack([batch[f"chosen_{name}"], batch[f"rejected_{name}"]], 1).reshape(
          (-1, batch[f"chosen_{name}"].shape[-1]))
    r = rewards(model, params, batch["encoder_input_tokens"], both("decoder_input_tokens"),
                both("decoder_target_tokens"), rng).reshape(-1, 2)
    w = _row_weights(batch)
    weight_sum = jnp.sum(w)
    loss_sum = losses.bradley_terry_loss(r[:, 0], r[:, 1], weights=w) * weight_sum
    correct = jnp.sum((r[:, 0] > r[:, 1]) * w)
    return loss_sum, weight_sum, {"accuracy": correct}
  return loss_fn


@gin.configurable(module="rm")
def train(config: "loop.LoopConfig" = gin.REQUIRED) -> dict:
  # Imported here: the data pipeline needs TensorFlow, the readout and losses above do not
  # (research/rm_sweep trains with them where TensorFlow is not installed).
  from xlalign_jax import data_pipeline, feature_converters
  from xlalign_jax.trainers import loop
  task = data_pipeline.get_task(config.mixture_or_task_name)
  loss_fn = {"pointwise": pointwise_loss_fn,
             "pairwise": pairwise_loss_fn}[feature_converters.reward_model_loss(task)]
  converter = feature_converters.converter_for(task)
  model = training.build_model(config.model_config, score_head=True)
  return loop.run(config, model, loss_fn, converter, new_params=(HEAD,), keep_best=True)
