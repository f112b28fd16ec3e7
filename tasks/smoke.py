"""`xlalign_v1.smoke.reverse`: a small self-contained seq2seq task generated in code (byte
vocabulary), for smoke runs of the trainers before any data directory exists.

inputs  "reverse: ka lo mi tu"   ->   targets "tu mi lo ka"
"""
import numpy as np
import seqio
import tensorflow as tf

TASK_NAME = "xlalign_v1.smoke.reverse"
VOCABULARY = seqio.ByteVocabulary()
_SYLLABLES = [c + v for c in "kltmnpsr" for v in "aeiou"]
_SPLIT_SIZES = {"train": 4096, "validation": 256}
_SPLIT_SEEDS = {"train": 0, "validation": 1}


def _examples(split: str):
  rng = np.random.default_rng(_SPLIT_SEEDS[split])
  for _ in range(_SPLIT_SIZES[split]):
    words = list(rng.choice(_SYLLABLES, size=rng.integers(3, 9)))
    yield {"inputs": "reverse: " + " ".join(words), "targets": " ".join(reversed(words))}


def _dataset_fn(split: str, shuffle_files: bool, seed=None) -> tf.data.Dataset:
  del shuffle_files, seed  # generated in a fixed order; the task shuffles examples
  examples = list(_examples(split))
  return tf.data.Dataset.from_tensor_slices(
      {k: [e[k] for e in examples] for k in ("inputs", "targets")})


_FEATURES = {
    "inputs": seqio.Feature(VOCABULARY, add_eos=True),
    "targets": seqio.Feature(VOCABULARY, add_eos=True),
}

seqio.TaskRegistry.add(
    TASK_NAME,
    source=seqio.FunctionDataSource(_dataset_fn, splits=list(_SPLIT_SIZES)),
    preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
    output_features=_FEATURES,
)
