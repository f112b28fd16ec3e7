"""Text in, text out: a policy checkpoint sampling responses to prompts (`xlalign generate`, whose
flags are in `generate_cli`).

  xlalign generate --checkpoint POLICY --task xlalign_v1.seahorse.es.prompts --data_dir DIR \
      [--n 1] [--temperature 0] --output outputs.jsonl

Prompts are tokenized with the task vocabulary, grouped into fixed-size batches of a few padded
lengths (one compilation per length bucket), and sampled with the jitted KV-cache sampler; the
RNG of batch i is fold_in(seed, i), so outputs don't depend on how many batches ran before.
"""
import json
from typing import List, Optional, Sequence

import jax
import numpy as np
import psutil
from tqdm import tqdm

from xlalign_jax import data_pipeline, decoding, fileio, partitioning, training
from xlalign_jax.decoding import SamplingConfig
from xlalign_jax.errors import UserError
from xlalign_jax.score import EOS_ID, bucket_length, pad_rows


def memory_budget_bytes() -> int:
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
  return int(psutil.virtual_memory().available * 0.8)


class Policy:
  """A (policy or SFT) checkpoint with its sampler, data-parallel over all devices."""

  def __init__(self, checkpoint: str, batch_size: int = 8,
               mesh_config: partitioning.MeshConfig = partitioning.MeshConfig()):
    self.checkpoint = checkpoint
    loaded = training.load_for_inference(checkpoint, batch_size, mesh_config)
    self.config, self.batch_size = loaded.config, loaded.batch_size
    self.sampler = decoding.Sampler(loaded.model, loaded.params, loaded.mesh, loaded.rules,
                                    loaded.param_shardings)

  def check(self, vocab, sampling: SamplingConfig, max_input_length: int) -> None:
    """Fail before any sampling when the vocabulary or the memory can't work."""
    if vocab.vocab_size > self.config.vocab_size:
      raise UserError(f"policy {self.checkpoint} has {self.config.vocab_size} token ids but the "
                      f"task vocabulary has {vocab.vocab_size}: it doesn't cover the task")
    decoding.check_memory(self.config, self.batch_size, max_input_length, sampling,
                          memory_budget_bytes())

  def generate(self, vocab, prompts: Sequence[str], sampling: SamplingConfig, seed: int = 0,
               max_input_length: int = 512, progress: bool = True) -> List[List[dict]]:
    """For each prompt, `num_samples` dicts {text, tokens, log_prob}."""
    self.check(vocab, sampling, max_input_length)
    encoded = [(list(vocab.encode(p)) + [EOS_ID])[:max_input_length] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    results: List[Optional[List[dict]]] = [None] * len(prompts)
    starts = list(range(0, len(order), self.batch_size))
    for b, start in enumerate(tqdm(starts, desc="sample", unit="batch", disable=not progress)):
      idx = order[start:start + self.batch_size]
      length = min(bucket_length(max(len(encoded[i]) for i in idx)), max_input_length)
      enc = pad_rows([encoded[i] for i in idx], length, self.batch_size)
      samples = jax.device_get(self.sampler(enc, jax.random.fold_in(jax.random.PRNGKey(seed), b),
                                            sampling))
      for row, i in enumerate(idx):
        results[i] = [self._decode(vocab, samples.tokens[row, j], samples.log_probs[row, j])
                      for j in range(sampling.num_samples)]
    return results

  @staticmethod
  def _decode(vocab, tokens: np.ndarray, log_probs: np.ndarray) -> dict:
    ids = [int(t) for t in tokens if t > 0]
    text_ids = ids[:-1] if ids and ids[-1] == EOS_ID else ids
    return {"text": vocab.decode(text_ids), "tokens": ids, "log_prob": float(log_probs.sum()),
            "finished": bool(ids) and ids[-1] == EOS_ID}


def prompt_examples(task_name: str, split: str, limit: Optional[int]) -> List[dict]:
  task = data_pipeline.get_task(task_name)
  if "inputs" not in task.output_features or len(task.output_features) != 1:
    raise UserError(f"{task_name} is not a prompts task (expected only an 'inputs' feature, e.g. "
                    "xlalign_v1.seahorse.es.prompts)")
  examples = list(data_pipeline.text_examples(task, split, limit))
  if not examples:
    raise UserError(f"{task_name} has no {split} prompts")
  return examples


def write_jsonl(path: str, rows) -> None:
  with fileio.open_for_write(path) as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
