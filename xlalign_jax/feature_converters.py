"""seqio feature converters for reward-model and prompt-only batches, and a truncation report.

SFT uses `seqio.EncDecFeatureConverter` as it is. The converters here pad to static shapes and never
pack (a scalar label or a chosen/rejected pair has no place in a packed row). Task features are
token ids with EOS already appended by the task (`append_eos_after_trim`), trimmed to the task
feature lengths by the task itself; `truncation_report` counts how many examples that trimming cut.

  converter                     task features                  model features
  PointwiseRMFeatureConverter   inputs, targets, label         encoder_input_tokens,
                                                               decoder_{target,input}_tokens,
                                                               decoder_loss_weights, label (scalar)
  PairwiseRMFeatureConverter    inputs, chosen, rejected       encoder_input_tokens,
                                                               {chosen,rejected}_decoder_{target,
                                                               input}_tokens, ..._loss_weights
  PromptsFeatureConverter       inputs                         encoder_input_tokens

Token features are int32 [length]; decoder inputs are the targets shifted right with 0 first;
loss weights are 1 on non-padding positions; `label` is a float32 scalar.
"""
from typing import Dict, Mapping, Tuple, Union

import numpy as np
import seqio
from seqio import utils
import tensorflow as tf

from xlalign_jax.errors import UserError

_Spec = seqio.FeatureConverter.FeatureSpec
_TOKENS = _Spec(dtype=tf.int32)


def _decoder_features(targets: tf.Tensor, bos_id: int, prefix: str = "") -> Dict[str, tf.Tensor]:
  return {
      f"{prefix}decoder_target_tokens": targets,
      f"{prefix}decoder_input_tokens": utils.make_autoregressive_inputs(targets, bos_id=bos_id),
      f"{prefix}decoder_loss_weights": seqio.non_padding_position(targets),
  }


def _decoder_specs(prefix: str = "") -> Dict[str, _Spec]:
  return {f"{prefix}decoder_{name}": _TOKENS
          for name in ("target_tokens", "input_tokens", "loss_weights")}


class _PaddedFeatureConverter(seqio.FeatureConverter):
  """Pads each feature to its task length; packing is refused."""

  PACKING_FEATURE_DTYPES = {}

  def __init__(self, pack: bool = False, **kwargs):
    if pack:
      raise UserError(f"{type(self).__name__} does not pack examples; use pack=False")
    super().__init__(pack=False, **kwargs)

  def _convert_features(self, ds: tf.data.Dataset,
                        task_feature_lengths: Mapping[str, int]) -> tf.data.Dataset:
    ds = utils.trim_and_pad_dataset(ds, task_feature_lengths)
    return ds.map(self._convert_example, num_parallel_calls=tf.data.AUTOTUNE)

  def _convert_example(self, features: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    raise NotImplementedError


class PointwiseRMFeatureConverter(_PaddedFeatureConverter):
  """inputs, targets, label -> a teacher-forced encoder-decoder batch with a scalar label.

  `task_feature_lengths` names `inputs` and `targets` only; `label` is a scalar.
  """

  TASK_FEATURES = {"inputs": _TOKENS, "targets": _TOKENS}
  MODEL_FEATURES = {"encoder_input_tokens": _TOKENS, **_decoder_specs(),
                    "label": _Spec(dtype=tf.float32, rank=0)}

  def _convert_features(self, ds, task_feature_lengths):
    if "label" not in ds.element_spec:
      raise UserError("dataset has no 'label': PointwiseRMFeatureConverter takes a pointwise "
                      "reward task (xlalign_v1.seahorse.*.rm)")
    return super()._convert_features(ds, task_feature_lengths)

  def _convert_example(self, features):
    return {"encoder_input_tokens": features["inputs"],
            **_decoder_features(features["targets"], self.bos_id),
            "label": tf.cast(features["label"], tf.float32)}

  def get_model_feature_lengths(self, task_feature_lengths):
    decoder = task_feature_lengths["targets"]
    return {"encoder_input_tokens": task_feature_lengths["inputs"],
            **{k: decoder for k in _decoder_specs()}, "label": 0}  # 0: a scalar, no length axis


class PairwiseRMFeatureConverter(_PaddedFeatureConverter):
  """inputs, chosen, rejected -> one encoder input and a teacher-forced decoder side per reply."""

  TASK_FEATURES = {"inputs": _TOKENS, "chosen": _TOKENS, "rejected": _TOKENS}
  MODEL_FEATURES = {"encoder_input_tokens": _TOKENS, **_decoder_specs("chosen_"),
                    **_decoder_specs("rejected_")}

  def _convert_example(self, features):
    return {"encoder_input_tokens": features["inputs"],
            **_decoder_features(features["chosen"], self.bos_id, "chosen_"),
            **_decoder_features(features["rejected"], self.bos_id, "rejected_")}

  def get_model_feature_lengths(self, task_feature_lengths):
    lengths = {"encoder_input_tokens": task_feature_lengths["inputs"]}
    for side in ("chosen", "rejected"):
      lengths.update({k: task_feature_lengths[side] for k in _decoder_specs(f"{side}_")})
    return lengths


class PromptsFeatureConverter(_PaddedFeatureConverter):
  """inputs -> encoder_input_tokens, for sampling (best-of-n, PPO)."""

  TASK_FEATURES = {"inputs": _TOKENS}
  MODEL_FEATURES = {"encoder_input_tokens": _TOKENS}

  def _convert_example(self, features):
    return {"encoder_input_tokens": features["inputs"]}

  def get_model_feature_lengths(self, task_feature_lengths):
    return {"encoder_input_tokens": task_feature_lengths["inputs"]}


_BY_FEATURES = {
    ("inputs", "targets"): seqio.EncDecFeatureConverter,
    ("inputs", "label", "targets"): PointwiseRMFeatureConverter,
    ("chosen", "inputs", "rejected"): PairwiseRMFeatureConverter,
    ("inputs",): PromptsFeatureConverter,
}


def converter_for(provider: Union[str, seqio.DatasetProviderBase],
                  **kwargs) -> seqio.FeatureConverter:
  """The converter for a task or mixture (or its name), chosen by its output features.

  `kwargs` go to the converter; packing is off unless asked for (SFT only).
  """
  if isinstance(provider, str):
    provider = seqio.get_mixture_or_task(provider)
  key = tuple(sorted(provider.output_features))
  if key not in _BY_FEATURES:
    raise UserError(f"{provider.name}: no feature converter for output features {list(key)}")
  kwargs.setdefault("pack", False)
  return _BY_FEATURES[key](**kwargs)


def reward_model_loss(provider: Union[str, seqio.DatasetProviderBase]) -> str:
  """"pointwise" (inputs, targets, label) or "pairwise" (inputs, chosen, rejected): the reward-model
  loss a task's features call for; a task of neither kind is a one-line error."""
  converter = converter_for(provider)
  if isinstance(converter, PointwiseRMFeatureConverter):
    return "pointwise"
  if isinstance(converter, PairwiseRMFeatureConverter):
    return "pairwise"
  name = provider if isinstance(provider, str) else provider.name
  raise UserError(f"{name} is not a reward-model task (needs inputs+targets+label or "
                  "inputs+chosen+rejected features)")


def task_feature_names(provider: Union[str, seqio.DatasetProviderBase]) -> Tuple[str, ...]:
  """The features `task_feature_lengths` must name for this task's converter (not `label`)."""
  converter_cls = type(converter_for(provider))
  return tuple(converter_cls.TASK_FEATURES)


def model_feature_shapes(converter: seqio.FeatureConverter, task_feature_lengths: Mapping[str, int],
                         batch_size: int) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
  """{model feature: (batch shape, numpy dtype)}, e.g. to initialize a model before data flows."""
  lengths = converter.get_model_feature_lengths(task_feature_lengths)
  specs = dict(converter.MODEL_FEATURES)
  if converter.pack:
    specs.update({k: _Spec(dtype=v) for k, v in converter.PACKING_FEATURE_DTYPES.items()})
  return {k: ((batch_size,) + ((lengths[k],) if spec.rank else ()), spec.dtype.as_numpy_dtype)
          for k, spec in specs.items()}


def truncation_report(ds: tf.data.Dataset, lengths: Mapping[str, int]) -> Dict[str, Dict[str, int]]:
  """How many examples of an untrimmed task dataset are longer than `lengths`, per feature.

  Pass `task.get_dataset(sequence_length=None, shuffle=False, split=...)`: tokenized with EOS and
  not trimmed, so the count is the number of examples the task cuts at `lengths`.
  Returns {feature: {"examples": n, "truncated": k, "max_length": longest}}.
  """
  names = [k for k in lengths if k in ds.element_spec]
  limits = tf.constant([lengths[k] for k in names], tf.int64)

  def count(state, ex):
    n, cut, longest = state
    lens = tf.stack([tf.shape(ex[k], out_type=tf.int64)[0] for k in names])
    return n + 1, cut + tf.cast(lens > limits, tf.int64), tf.maximum(longest, lens)

  zeros = tf.zeros([len(names)], tf.int64)
  n, cut, longest = ds.reduce((tf.constant(0, tf.int64), zeros, zeros), count)
  return {k: {"examples": int(n), "truncated": int(cut[i]), "max_length": int(longest[i])}
          for i, k in enumerate(names)}
