"""Feature converters for reward-model and prompt batches, and the truncation report."""
import numpy as np
import pytest
import seqio
import tensorflow as tf

from xlalign_jax import feature_converters as fc
from xlalign_jax.errors import UserError


def _ds(examples, float_keys=("label",)):
  keys = examples[0].keys()
  return tf.data.Dataset.from_generator(
      lambda: iter(examples),
      output_signature={k: tf.TensorSpec([], tf.float32) if k in float_keys
                        else tf.TensorSpec([None], tf.int32) for k in keys})


def _one(converter, examples, lengths):
  return list(converter(_ds(examples), lengths).as_numpy_iterator())


def test_pointwise():
  (ex,) = _one(fc.PointwiseRMFeatureConverter(),
               [{"inputs": [7, 8, 1], "targets": [3, 9, 1], "label": 1.0}],
               {"inputs": 5, "targets": 4})
  np.testing.assert_array_equal(ex["encoder_input_tokens"], [7, 8, 1, 0, 0])
  np.testing.assert_array_equal(ex["decoder_target_tokens"], [3, 9, 1, 0])
  np.testing.assert_array_equal(ex["decoder_input_tokens"], [0, 3, 9, 1])
  np.testing.assert_array_equal(ex["decoder_loss_weights"], [1, 1, 1, 0])
  assert ex["label"] == 1.0 and ex["label"].dtype == np.float32


def test_pointwise_needs_a_label():
  ds = _ds([{"inputs": [7, 1], "targets": [3, 1]}])
  with pytest.raises(UserError, match="no 'label'"):
    fc.PointwiseRMFeatureConverter()(ds, {"inputs": 4, "targets": 4})


def test_pairwise():
  (ex,) = _one(fc.PairwiseRMFeatureConverter(),
               [{"inputs": [7, 1], "chosen": [3, 1], "rejected": [4, 5, 1]}],
               {"inputs": 3, "chosen": 4, "rejected": 4})
  np.testing.assert_array_equal(ex["encoder_input_tokens"], [7, 1, 0])
  np.testing.assert_array_equal(ex["chosen_decoder_target_tokens"], [3, 1, 0, 0])
  np.testing.assert_array_equal(ex["chosen_decoder_input_tokens"], [0, 3, 1, 0])
  np.testing.assert_array_equal(ex["chosen_decoder_loss_weights"], [1, 1, 0, 0])
  np.testing.assert_array_equal(ex["rejected_decoder_target_tokens"], [4, 5, 1, 0])
  np.testing.assert_array_equal(ex["rejected_decoder_input_tokens"], [0, 4, 5, 1])
  assert set(ex) == set(fc.PairwiseRMFeatureConverter.MODEL_FEATURES)


def test_prompts():
  (ex,) = _one(fc.PromptsFeatureConverter(), [{"inputs": [7, 1], "targets": [5, 1]}], {"inputs": 4})
  assert set(ex) == {"encoder_input_tokens"}
  np.testing.assert_array_equal(ex["encoder_input_tokens"], [7, 1, 0, 0])


def test_packing_is_refused():
  with pytest.raises(UserError, match="does not pack"):
    fc.PairwiseRMFeatureConverter(pack=True)


def test_model_feature_shapes():
  shapes = fc.model_feature_shapes(fc.PointwiseRMFeatureConverter(), {"inputs": 8, "targets": 4}, 2)
  assert shapes["encoder_input_tokens"] == ((2, 8), np.int32)
  assert shapes["decoder_input_tokens"] == ((2, 4), np.int32)
  assert shapes["label"] == ((2,), np.float32)
  packed = fc.model_feature_shapes(seqio.EncDecFeatureConverter(pack=True),
                                   {"inputs": 8, "targets": 4}, 3)
  assert packed["decoder_segment_ids"] == ((3, 4), np.int32)


def test_truncation_report():
  ds = _ds([{"inputs": [1] * n, "targets": [2] * m} for n, m in [(3, 2), (6, 2), (9, 5)]])
  report = fc.truncation_report(ds, {"inputs": 5, "targets": 4, "absent": 3})
  assert report == {"inputs": {"examples": 3, "truncated": 2, "max_length": 9},
                    "targets": {"examples": 3, "truncated": 1, "max_length": 5}}
