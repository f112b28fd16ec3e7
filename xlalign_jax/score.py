"""`xlalign score`: teacher-forced log-likelihood of each target given its input.

  xlalign score --checkpoint DIR --vocab SPM_MODEL --input IN.jsonl --output OUT.jsonl

Each input line `{"inputs": str, "targets": str, ...}` is written back with `"loglik"`: the sum of
the target tokens' log-probabilities, EOS included. All batches of a call are padded to one shape
(the call's longest input and target, rounded up to 16, and a fixed row count), so the jitted
function compiles once per call at most, not per batch. Targets that share an input (best-of-n
candidates, the summaries of one article) are scored together, and the encoder reads each distinct
input of a batch once.
"""
import functools
import json
import pathlib
from typing import Callable, Dict, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from xlalign_jax import checkpoints, losses, partitioning, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError
from xlalign_jax.trainers import reward as reward_trainer

EOS_ID = 1


def bucket_length(n: int, minimum: int = 16) -> int:
  return max(minimum, 1 << (max(n, 1) - 1).bit_length())


def padded_length(n: int, multiple: int = 16) -> int:
  return max(multiple, -(-n // multiple) * multiple)


def pad_rows(seqs: Sequence[Sequence[int]], length: int, rows: int) -> np.ndarray:
  out = np.zeros((rows, length), np.int32)
  for i, s in enumerate(seqs):
    out[i, :len(s)] = s
  return out


def shift_right(targets: np.ndarray) -> np.ndarray:
  """Decoder inputs: targets shifted right with 0 (pad) as the start token, as T5."""
  return np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)


# One jitted function per (architecture, score kind, mesh): the Scorers of an experiment's RMs, or
# of its SFT models, share its traces and compiled programs. A function per Scorer re-traced and
# re-lowered every batch shape for every checkpoint, and re-compiled it where no persistent
# compilation cache is set (the demo's RM evaluation in one such process: 139 s, now 79 s).
@functools.lru_cache(maxsize=None)
def _scoring_function(config: ModelConfig, reward: bool, mesh, rules) -> Callable:
  """jitted `(params, encoder rows, row -> encoder row, decoder inputs, targets) -> one score per
  row`: the sequence log-likelihood, or with `reward` the reward head's score at the last token."""
  model = training.build_model(config, score_head=reward)

  def decoder_outputs(params, enc, row_input, dec_in, dec_tgt):
    # Each distinct input once through the encoder; row r's decoder attends to input row_input[r].
    encoded = model.apply({"params": params}, enc, method="encode")
    return model.apply({"params": params}, encoded[row_input], enc[row_input], dec_in, dec_tgt,
                       method="decode")

  def loglik(params, enc, row_input, dec_in, dec_tgt):
    logits = decoder_outputs(params, enc, row_input, dec_in, dec_tgt)
    return losses.sequence_log_likelihood(logits, dec_tgt, (dec_tgt > 0).astype(jnp.float32))

  def reward_fn(params, enc, row_input, dec_in, dec_tgt):
    scores = decoder_outputs(params, enc, row_input, dec_in, dec_tgt)
    return reward_trainer.reward_at_last_token(scores, dec_tgt)

  batch_sharding = partitioning.batch_sharding(mesh, rules)
  return jax.jit(reward_fn if reward else loglik,
                 in_shardings=(training.abstract_params(model, mesh, rules)[1], batch_sharding,
                               partitioning.batch_sharding(mesh, rules, 1), batch_sharding,
                               batch_sharding),
                 out_shardings=NamedSharding(mesh, PartitionSpec()))


class Scorer:
  """Log-likelihoods (LM checkpoints) or rewards (`reward=True`: reward-model checkpoints, the
  head's score at the response's last token) of token-id pairs, data-parallel over all devices."""

  def __init__(self, checkpoint: str, batch_size: int = 32, reward: bool = False,
               mesh_config: partitioning.MeshConfig = partitioning.MeshConfig()):
    if reward and not checkpoints.has_param(checkpoint, reward_trainer.HEAD):
      raise UserError(f"{checkpoint} has no reward head ({reward_trainer.HEAD}): not a "
                      "reward-model checkpoint")
    loaded = training.load_for_inference(checkpoint, batch_size, mesh_config, score_head=reward)
    self.config, self.model, self.params = loaded.config, loaded.model, loaded.params
    self.mesh, self.rules, self.batch_size = loaded.mesh, loaded.rules, loaded.batch_size
    self._batch_sharding = partitioning.batch_sharding(self.mesh, self.rules)
    self._row_sharding = partitioning.batch_sharding(self.mesh, self.rules, 1)
    self._fn = _scoring_function(self.config, reward, self.mesh, self.rules)
    # Encoder rows per batch: the fewest of these that holds a batch's distinct inputs (each a
    # multiple of the devices the batch is split over, so the encoder's batch shards evenly).
    divisor = partitioning.batch_size_divisor(self.mesh, self.rules)
    self._input_rows = sorted({min(divisor << k, self.batch_size)
                               for k in range(self.batch_size.bit_length())})

  def __call__(self, pairs: Sequence[Tuple[List[int], List[int]]], progress: bool = False
               ) -> np.ndarray:
    """Token-id pairs (inputs, targets), EOS already appended -> one float per pair."""
    for i, (src, tgt) in enumerate(pairs):
      top = max(max(src, default=0), max(tgt, default=0))
      if top >= self.config.vocab_size:
        raise UserError(f"example {i}: token id {top} is outside the model's vocabulary "
                        f"({self.config.vocab_size} ids)")
    out = np.zeros(len(pairs), np.float64)
    if not pairs:
      return out
    # Sort by input length, then input, then target length: each batch holds few distinct inputs.
    # Results go back to the input order.
    input_ids: Dict[Tuple[int, ...], int] = {}
    input_of = [input_ids.setdefault(tuple(src), len(input_ids)) for src, _ in pairs]
    order = sorted(range(len(pairs)),
                   key=lambda i: (len(pairs[i][0]), input_of[i], len(pairs[i][1])))
    batches = [order[start:start + self.batch_size]
               for start in range(0, len(order), self.batch_size)]
    # Every batch of a call has one shape, the call's longest input and target rounded up to a
    # multiple of 16: each other shape would be another compilation (~2 s at mt5_tiny on two CPU
    # cores; per-batch power-of-two lengths made the demo's RM evaluation compile 20 programs).
    most_inputs = max(len({input_of[i] for i in idx}) for idx in batches)
    rows = next(r for r in self._input_rows if r >= most_inputs)
    input_length = padded_length(max(len(src) for src, _ in pairs))
    target_length = padded_length(max(len(tgt) for _, tgt in pairs))
    for idx in tqdm(batches, desc="score", unit="batch", disable=not progress):
      sources: Dict[int, List[int]] = {}  # each distinct input of the batch, in order
      for i in idx:
        sources.setdefault(input_of[i], pairs[i][0])
      position = {k: j for j, k in enumerate(sources)}
      enc = pad_rows(list(sources.values()), input_length, rows)
      # Padding rows read input 0 and score nothing (their targets are all padding).
      row_input = np.zeros(self.batch_size, np.int32)
      row_input[:len(idx)] = [position[input_of[i]] for i in idx]
      tgt = pad_rows([pairs[i][1] for i in idx], target_length, self.batch_size)
      # Every process holds the whole batch and gets every score back (multi-host too).
      batch = [partitioning.global_array(x, sharding) for x, sharding in (
          (enc, self._batch_sharding), (row_input, self._row_sharding),
          (shift_right(tgt), self._batch_sharding), (tgt, self._batch_sharding))]
      with partitioning.activate(self.mesh, self.rules):
        values = self._fn(self.params, *batch)
      out[idx] = np.asarray(values)[:len(idx)]
    return out

  def score_texts(self, vocab, inputs: Sequence[str], targets: Sequence[str],
                  progress: bool = False) -> np.ndarray:
    """Tokenize with `vocab` (EOS appended to both) and score."""
    if vocab.vocab_size > self.config.vocab_size:
      raise UserError(f"vocabulary has {vocab.vocab_size} ids but the model only "
                      f"{self.config.vocab_size}: not this model's vocabulary")
    pairs = [(list(vocab.encode(x)) + [EOS_ID], list(vocab.encode(y)) + [EOS_ID])
             for x, y in zip(inputs, targets)]
    return self(pairs, progress=progress)


def read_jsonl(path: str, required: Sequence[str]) -> List[dict]:
  p = pathlib.Path(path)
  if not p.is_file():
    raise UserError(f"input file not found: {path}")
  rows = []
  with p.open(encoding="utf-8") as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
      missing = [k for k in required if not isinstance(row.get(k), str)]
      if missing:
        raise UserError(f"{path}:{lineno}: missing string field(s) {missing}")
      rows.append(row)
  if not rows:
    raise UserError(f"{path} has no examples")
  return rows


def load_vocabulary(path: str):
  import seqio
  if not pathlib.Path(path).is_file():
    raise UserError(f"sentencepiece model not found: {path}")
  return seqio.SentencePieceVocabulary(path)
