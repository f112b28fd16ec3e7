"""The mT5 / T5 v1.1 encoder-decoder with T5X parameter names, and its masks.

Policy, frozen reference, reward model and value model are this one module with different
parameters; reward and value models add a scalar head (`decoder/score_head`) read from the final
decoder states.
"""
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from xlalign_jax import layers
from xlalign_jax.config import ModelConfig

Array = jax.Array


def attention_mask(query_valid: Array, key_valid: Array) -> Array:
  """`[B, 1, q, k]` boolean mask: both positions are real tokens."""
  return query_valid[:, None, :, None] & key_valid[:, None, None, :]


def causal_mask(valid: Array) -> Array:
  """`[B, 1, T, T]`: real tokens attending to themselves and earlier real tokens."""
  length = valid.shape[-1]
  causal = jnp.arange(length)[:, None] >= jnp.arange(length)[None, :]
  return attention_mask(valid, valid) & causal[None, None]


def _layer_cls(cls, config: ModelConfig, static_argnums):
  # Rematerialise whole layers: activations are recomputed in the backward pass (memory for FLOPs).
  return nn.remat(cls, static_argnums=static_argnums) if config.remat else cls


class EncoderLayer(nn.Module):
  config: ModelConfig

  @nn.compact
  def __call__(self, x, mask, bias, deterministic):
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    drop = lambda y: nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(y, deterministic)
    h = layers.RMSNorm(dtype=dtype, name="pre_attention_layer_norm")(x)
    h = layers.MultiHeadDotProductAttention(cfg.num_heads, cfg.head_dim, cfg.dropout_rate, dtype,
                                            name="attention")(h, None, mask, bias, deterministic)
    x = x + drop(h)
    h = layers.RMSNorm(dtype=dtype, name="pre_mlp_layer_norm")(x)
    h = layers.MlpBlock(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dtype,
                        name="mlp")(h, deterministic)
    return layers.constrain(x + drop(h), ("batch", "length", "embed"))


class DecoderLayer(nn.Module):
  config: ModelConfig

  @nn.compact
  def __call__(self, x, encoded, self_mask, cross_mask, bias, deterministic, decode=False):
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    drop = lambda y: nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(y, deterministic)
    attention = lambda name: layers.MultiHeadDotProductAttention(
        cfg.num_heads, cfg.head_dim, cfg.dropout_rate, dtype, name=name)
    h = layers.RMSNorm(dtype=dtype, name="pre_self_attention_layer_norm")(x)
    h = attention("self_attention")(h, None, self_mask, bias, deterministic, decode=decode)
    x = x + drop(h)
    h = layers.RMSNorm(dtype=dtype, name="pre_cross_attention_layer_norm")(x)
    h = attention("encoder_decoder_attention")(h, encoded, cross_mask, None, deterministic,
                                               decode=decode)
    x = x + drop(h)
    h = layers.RMSNorm(dtype=dtype, name="pre_mlp_layer_norm")(x)
    h = layers.MlpBlock(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dtype,
                        name="mlp")(h, deterministic)
    return layers.constrain(x + drop(h), ("batch", "length", "embed"))


class Encoder(nn.Module):
  config: ModelConfig
  token_embedder: nn.Module

  @nn.compact
  def __call__(self, tokens: Array, deterministic: bool) -> Array:
    cfg = self.config
    valid = tokens > 0
    length = tokens.shape[-1]
    x = self.token_embedder(tokens)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic)
    bias = layers.RelativePositionBiases(cfg.relative_attention_num_buckets,
                                         cfg.relative_attention_max_distance, cfg.num_heads,
                                         jnp.dtype(cfg.dtype), name="relpos_bias")(
                                             length, length, bidirectional=True)
    mask = attention_mask(valid, valid)
    layer = _layer_cls(EncoderLayer, cfg, static_argnums=(4,))  # deterministic
    for i in range(cfg.num_encoder_layers):
      x = layer(cfg, name=f"layers_{i}")(x, mask, bias, deterministic)
    x = layers.RMSNorm(dtype=jnp.dtype(cfg.dtype), name="encoder_norm")(x)
    return nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic)


# Decode-cache entries that run over decoded positions, and along which axis (name -> axis).
DECODE_CACHE_LENGTH_AXES = {**layers.SELF_ATTENTION_CACHE_AXES, "positions": 0}


class Decoder(nn.Module):
  """Teacher-forced over `[B, T]` tokens, or one position per call with `decode=True`."""
  config: ModelConfig
  token_embedder: nn.Module
  score_head: bool = False

  @nn.compact
  def __call__(self, encoded, encoder_valid, decoder_input_tokens, decoder_valid, deterministic,
               decode=False, decode_position: Optional[Array] = None):
    cfg = self.config
    dtype = jnp.dtype(cfg.dtype)
    length = decoder_input_tokens.shape[-1]
    x = self.token_embedder(decoder_input_tokens)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic)
    relpos = layers.RelativePositionBiases(cfg.relative_attention_num_buckets,
                                           cfg.relative_attention_max_distance, cfg.num_heads,
                                           dtype, name="relpos_bias")
    if decode and decode_position is not None:
      # One query position against the whole cache; the cache masks future positions.
      max_length = self.get_variable("cache", "positions").shape[0]
      bias = relpos(1, max_length, bidirectional=False, query_offset=decode_position)
      self_mask = None
    else:
      bias = relpos(length, length, bidirectional=False)
      self_mask = causal_mask(decoder_valid)
      if decode:  # the call that creates the cache: its shape records the length for later steps
        self.variable("cache", "positions", lambda: jnp.zeros((length,), jnp.int8))
    # The decoder may carry n samples per encoded row (sampling reuses one encoder pass).
    n = decoder_valid.shape[0] // encoder_valid.shape[0]
    cross_mask = attention_mask(decoder_valid, jnp.repeat(encoder_valid, n, axis=0))
    layer = _layer_cls(DecoderLayer, cfg, static_argnums=(6, 7))  # deterministic, decode
    for i in range(cfg.num_decoder_layers):
      x = layer(cfg, name=f"layers_{i}")(x, encoded, self_mask, cross_mask, bias, deterministic,
                                          decode)
    x = layers.RMSNorm(dtype=dtype, name="decoder_norm")(x)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic)
    if self.score_head:
      score = layers.Dense((1,), ("embed", None), dtype=dtype, name="score_head")(x)
      return jnp.asarray(score[..., 0], jnp.float32)
    if cfg.logits_via_embedding:
      logits = self.token_embedder.attend(x) * (cfg.emb_dim ** -0.5)
    else:
      logits = layers.Dense((cfg.vocab_size,), ("embed", "vocab"), dtype=dtype,
                            name="logits_dense")(x)
    return layers.constrain(jnp.asarray(logits, jnp.float32), ("batch", "length", "vocab"))


class Transformer(nn.Module):
  """mT5 encoder-decoder. `score_head=True` turns the LM head into a per-token scalar head
  (reward / value models); everything else is shared, names included."""
  config: ModelConfig
  score_head: bool = False

  def setup(self):
    cfg = self.config
    self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, jnp.dtype(cfg.dtype))
    self.encoder = Encoder(cfg, self.token_embedder)
    self.decoder = Decoder(cfg, self.token_embedder, self.score_head)

  def encode(self, encoder_input_tokens, deterministic=True):
    return self.encoder(encoder_input_tokens, deterministic)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
             deterministic=True, decode=False, decode_position=None):
    return self.decoder(encoded, encoder_input_tokens > 0, decoder_input_tokens,
                        decoder_target_tokens > 0, deterministic, decode, decode_position)

  def __call__(self, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
               deterministic=True):
    """Teacher-forced logits `[B, T, vocab]` (or scores `[B, T]` with a score head)."""
    encoded = self.encode(encoder_input_tokens, deterministic)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
                       deterministic)
