"""Analytic model FLOPs of the mT5 encoder-decoder, and XLA's own count for comparison.

Only matrix multiplications are counted, 2 FLOPs per multiply-add (elementwise work: norms,
softmax, GELU, the optimizer, is left out, as is the embedding lookup, a gather):

  per encoder token and layer   2 * (4 * d * hk + m * d * f) + 4 * L_enc * hk
  per decoder token and layer   2 * (6 * d * hk + m * d * f) + 4 * (L_self + L_enc) * hk
  per encoder token and decoder layer (cross-attention keys/values, once per input)  4 * d * hk
  per decoder token, head       2 * d * V   (LM logits; 2 * d for a reward/score head)

with d = d_model, hk = heads * head_dim, f = d_ff, m = 3 for a gated MLP (wi_0, wi_1, wo) else 2,
V = vocabulary. 4 * L * hk is the attention scores (Q K^T) and the weighted sum of values over L
keys; L_self is the whole target length in a teacher-forced pass (both implementations compute
the full masked score matrix) and the number of positions decoded so far when sampling. A training
step is 3x the forward pass (backward = 2x forward).
"""
from typing import Optional

from xlalign_jax.config import ModelConfig


def _inner(c: ModelConfig) -> int:
  return c.num_heads * c.head_dim


def _mlp(c: ModelConfig) -> int:
  return (len(c.mlp_activations) + 1) * c.emb_dim * c.mlp_dim


def encoder_token(c: ModelConfig, enc_len: int) -> float:
  """Forward FLOPs of one encoder token through every encoder layer."""
  per_layer = 2 * (4 * c.emb_dim * _inner(c) + _mlp(c)) + 4 * enc_len * _inner(c)
  return c.num_encoder_layers * per_layer


def cross_kv_token(c: ModelConfig) -> float:
  """Cross-attention key/value projections of one encoder token, all decoder layers."""
  return c.num_decoder_layers * 4 * c.emb_dim * _inner(c)


def decoder_token(c: ModelConfig, self_len: int, enc_len: int, score_head: bool = False) -> float:
  """Forward FLOPs of one decoder token (query side) including the output head."""
  per_layer = (2 * (6 * c.emb_dim * _inner(c) + _mlp(c))
               + 4 * (self_len + enc_len) * _inner(c))
  head = 2 * c.emb_dim * (1 if score_head else c.vocab_size)
  return c.num_decoder_layers * per_layer + head


def forward(c: ModelConfig, batch: int, enc_len: int, dec_len: int, dec_rows_per_input: int = 1,
            score_head: bool = False) -> float:
  """Teacher-forced forward pass; `dec_rows_per_input` decoder rows share one encoder pass."""
  enc = batch * enc_len * (encoder_token(c, enc_len) + cross_kv_token(c))
  dec = batch * dec_rows_per_input * dec_len * decoder_token(c, dec_len, enc_len, score_head)
  return enc + dec


def train_step(c: ModelConfig, batch: int, enc_len: int, dec_len: int,
               dec_rows_per_input: int = 1, score_head: bool = False) -> float:
  return 3 * forward(c, batch, enc_len, dec_len, dec_rows_per_input, score_head)


def sampling(c: ModelConfig, batch: int, enc_len: int, num_samples: int, new_tokens: int) -> float:
  """One encoder pass per input, then `new_tokens` KV-cache steps for batch * n rows; step t
  attends to t + 1 cached positions."""
  enc = batch * enc_len * (encoder_token(c, enc_len) + cross_kv_token(c))
  rows = batch * num_samples
  steps = sum(decoder_token(c, t + 1, enc_len) for t in range(new_tokens))
  return enc + rows * steps


def decode_step(c: ModelConfig, rows: int, cache_len: int, enc_len: int) -> float:
  """One KV-cache step for `rows` rows attending to `cache_len` positions (what XLA computes for
  a cache of that length, masked or not)."""
  return rows * decoder_token(c, cache_len, enc_len)


def xla_flops(compiled) -> Optional[float]:
  """FLOPs from `jax.jit(f).lower(...).compile().cost_analysis()`, None where XLA gives none."""
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # some backends do not implement it
    return None
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get("flops")
  return float(flops) if flops and flops > 0 else None
