"""seqio task -> feature converter -> per-process batches, deterministic and resumable.

Training data order is fixed by the seed; resuming skips the batches already consumed, so a
restarted run sees exactly the batches an uninterrupted one would.
"""
import difflib
from typing import Iterator, List, Mapping, Optional

import jax
import numpy as np
import seqio
import tensorflow as tf

from xlalign_jax.errors import UserError


def get_task(name: str):
  """A registered seqio task or mixture; an unknown name is a UserError listing close names."""
  import xlalign_tasks  # noqa: F401  (registers the project's tasks)
  names = set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names())
  if name not in names:
    close = difflib.get_close_matches(name, sorted(names), n=6, cutoff=0.6)
    hint = f"; close names: {', '.join(close)}" if close else (
        "; names look like xlalign_v1.seahorse.en.rm, xlalign_v1.oasst.es.sft, "
        "xlalign_v1.seahorse.all.sft, xlalign_v1.oasst.en_es.rm")
    raise UserError(f"unknown seqio task or mixture {name!r}{hint}")
  return seqio.get_mixture_or_task(name)


def text_examples(task, split: str, limit: Optional[int] = None) -> Iterator[dict]:
  """A task's source examples (text before tokenization, plus lang and id) as Python values."""
  if split not in task.splits:
    raise UserError(f"task {task.name} has no split {split!r}; its splits: "
                    f"{', '.join(task.splits)}")
  ds = task.source.get_dataset(split=split, shuffle=False)
  if limit is not None:
    ds = ds.take(limit)
  for example in ds.as_numpy_iterator():
    yield {k: v.decode("utf-8") if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
           for k, v in example.items()}


def example_group(example: dict, index: int) -> str:
  """What an example shares its input with, for intervals that resample whole groups: its `group`
  (xlalign tasks: the article or message tree), else its `id`, else its position (a task of
  another project may carry neither); never one shared placeholder, which would merge them all."""
  for key in ("group", "id"):
    if example.get(key) is not None:
      return str(example[key])
  return f"#{index}"


def _shard_info() -> Optional[seqio.ShardInfo]:
  if jax.process_count() == 1:
    return None
  return seqio.ShardInfo(index=jax.process_index(), num_shards=jax.process_count())


def local_batch_size(global_batch_size: int) -> int:
  if global_batch_size % jax.process_count():
    raise UserError(f"batch size {global_batch_size} is not divisible by the "
                    f"{jax.process_count()} processes")
  return global_batch_size // jax.process_count()


EVAL_SAMPLE_SEED = 0


def train_batches(task_name: str, feature_lengths: Mapping[str, int], global_batch_size: int,
                  seed: int, start_batch: int, feature_converter: seqio.FeatureConverter,
                  split: str = "train") -> Iterator[dict]:
  """Endless shuffled batches of this process's rows, starting after `start_batch` batches."""
  get_task(task_name)
  ds = seqio.get_dataset(task_name, dict(feature_lengths), dataset_split=split, shuffle=True,
                         num_epochs=None, seed=seed, feature_converter=feature_converter,
                         shard_info=_shard_info())
  ds = ds.batch(local_batch_size(global_batch_size), drop_remainder=True).skip(start_batch)
  # Without tf.data's autotuner: dropping an endless iterator it tuned blocked the caller for about
  # as long as the iterator had run (15-38 s at the end of the demo's training stages, measured on
  # the 2-core CPU). Tokenizing is ~9 ms a batch either way, far below a training step.
  options = tf.data.Options()
  options.autotune.enabled = False
  return ds.with_options(options).as_numpy_iterator()


def eval_batches(task_name: str, feature_lengths: Mapping[str, int], global_batch_size: int,
                 feature_converter: seqio.FeatureConverter, split: str = "validation",
                 max_examples: Optional[int] = None) -> List[dict]:
  """A fixed list of batches of the split; the last one zero-padded (zero weight) to full size,
  so evaluation compiles once."""
  get_task(task_name)
  # With a cap, a fixed random sample of the split rather than the file's first rows.
  ds = seqio.get_dataset(task_name, dict(feature_lengths), dataset_split=split,
                         shuffle=bool(max_examples), seed=EVAL_SAMPLE_SEED, num_epochs=1,
                         feature_converter=feature_converter, shard_info=_shard_info())
  if max_examples:  # over all processes, as with one
    ds = ds.take(-(-max_examples // jax.process_count()))
  size = local_batch_size(global_batch_size)
  padding = {k: np.zeros((size,) + tuple(spec.shape), spec.dtype.as_numpy_dtype)
             for k, spec in ds.element_spec.items()}
  batches = []
  for batch in ds.batch(size).as_numpy_iterator():
    rows = len(next(iter(batch.values())))
    batches.append({k: np.concatenate([v, padding[k][:size - rows]]) for k, v in batch.items()})
  # Multi-host: each process holds its shard of the split, and shards can differ by a batch; all
  # must run the same number of (collective) eval steps, so the short ones get all-padding batches.
  most = _max_over_processes(len(batches))
  if not most:
    raise UserError(f"task {task_name!r} has no examples in split {split!r}")
  return batches + [padding] * (most - len(batches))


def _max_over_processes(value: int) -> int:
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils
  return int(np.max(multihost_utils.process_allgather(np.asarray(value, np.int32))))
