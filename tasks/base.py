"""Output features shared by the tasks, and registration of a task from a Python example function.

A task's source calls `examples_fn(split)` when its dataset is requested (so files are read at run
time, from the configured data directory) and yields the text fields before tokenization plus
`lang`, `id` and `group`, which pass through the pipeline untokenized for tracing. `group` names
what an example shares its input with (its article, its message tree), so that confidence
intervals resample whole groups; an example without one is a group of its own. `xlalign inspect`
writes exactly these source examples.
"""
import functools
from typing import Callable, Dict, List, Mapping, Sequence

from absl import logging
import seqio
import tensorflow as tf

from xlalign_tasks import settings

TRACE_KEYS = ("lang", "id", "group")

_TEXT = seqio.Feature(settings.VOCABULARY, add_eos=True)
_LABEL = seqio.Feature(seqio.PassThroughVocabulary(size=0), add_eos=False, dtype=tf.float32, rank=0)

SFT_FEATURES = {"inputs": _TEXT, "targets": _TEXT}
POINTWISE_RM_FEATURES = {"inputs": _TEXT, "targets": _TEXT, "label": _LABEL}
PAIRWISE_RM_FEATURES = {"inputs": _TEXT, "chosen": _TEXT, "rejected": _TEXT}
PROMPTS_FEATURES = {"inputs": _TEXT}


def check_vocabulary(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Resolves the vocabulary while the pipeline is built, so a missing one is a plain UserError
  rather than an error wrapped in a tf.data trace."""
  _ = settings.VOCABULARY.vocabulary
  return dataset


# The text stays available through `xlalign inspect`; no `*_pretokenized` copies in the pipeline.
PREPROCESSORS = (
    check_vocabulary,
    functools.partial(seqio.preprocessors.tokenize, copy_pretokenized=False),
    seqio.preprocessors.append_eos_after_trim,
)

ExamplesFn = Callable[[str], List[Dict]]


def register(name: str, examples_fn: ExamplesFn, output_features: Mapping[str, seqio.Feature],
             splits: Sequence[str], preprocessors: Sequence[Callable] = PREPROCESSORS) -> None:
  """Adds task `name` whose examples come from `examples_fn(split)` when its dataset is built."""

  def dataset_fn(split: str, shuffle_files: bool, seed=None) -> tf.data.Dataset:
    examples = examples_fn(split)
    if not examples:
      logging.warning("task %s has no examples in split %s of %s", name, split,
                      settings.data_dir())
    ds = to_dataset(examples, output_features)
    if shuffle_files and examples:
      # The whole split, not seqio's 1000-example buffer: files come grouped (by article, by
      # language, extra rows after the release), and a windowed shuffle keeps that order.
      ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    return ds

  seqio.TaskRegistry.add(
      name,
      source=seqio.FunctionDataSource(dataset_fn, splits=list(splits)),
      preprocessors=list(preprocessors),
      output_features=dict(output_features),
  )


def to_dataset(examples: List[Dict],
               output_features: Mapping[str, seqio.Feature]) -> tf.data.Dataset:
  """Examples (dicts of text, labels, lang, id, group) -> a tf.data.Dataset of scalars."""
  examples = [e if "group" in e else {**e, "group": e["id"]} for e in examples]
  dtypes = {k: f.dtype if isinstance(f.vocabulary, seqio.PassThroughVocabulary) else tf.string
            for k, f in output_features.items()}
  dtypes.update({k: tf.string for k in TRACE_KEYS})
  return tf.data.Dataset.from_tensor_slices(
      {k: tf.constant([e[k] for e in examples], dtype=dt, shape=[len(examples)])
       for k, dt in dtypes.items()})
