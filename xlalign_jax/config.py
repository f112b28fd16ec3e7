"""Model configuration: the architecture of an mT5 / T5 v1.1 encoder-decoder.

Bound from gin (gin_configs/models/*.gin) and stored as JSON in every checkpoint, so that commands
taking `--checkpoint` need no model gin file.
"""
import dataclasses
import json
from typing import Tuple

import gin

from xlalign_jax import config_types
from xlalign_jax.errors import UserError


@gin.configurable
@dataclasses.dataclass(frozen=True)
class ModelConfig:
  vocab_size: int = 4096
  emb_dim: int = 128
  num_heads: int = 4
  head_dim: int = 32
  num_encoder_layers: int = 2
  num_decoder_layers: int = 2
  mlp_dim: int = 256
  mlp_activations: Tuple[str, ...] = ("gelu", "linear")  # gated GELU, T5 v1.1
  dropout_rate: float = 0.0
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  logits_via_embedding: bool = False  # T5 v1.1 / mT5: untied `decoder/logits_dense`
  dtype: str = "float32"  # activation dtype; parameters and softmax stay float32
  remat: bool = False  # rematerialise each layer in the backward pass (memory for compute)

  def __post_init__(self):
    config_types.check_field_types(self)

  def to_dict(self) -> dict:
    return dict(dataclasses.asdict(self), mlp_activations=list(self.mlp_activations))

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict) -> "ModelConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise UserError(f"model config has unknown fields {unknown}")
    d = dict(d)
    if "mlp_activations" in d:
      d["mlp_activations"] = tuple(d["mlp_activations"])
    return cls(**d)
