"""`xlalign_v1.oasst.{lang}.{sft,rm,prompts}`: dialog from OpenAssistant message trees.

Each prompter message with at least one ranked assistant reply gives, with the dialog up to and
including it as `inputs` (after the paper's instruction):
- sft:     the best-ranked reply as `targets`;
- rm:      pairwise `chosen` / `rejected`: two ranked replies with rank_chosen < rank_rejected;
- prompts: `inputs` alone.
Splits: train, validation (by a hash of message_tree_id). Synthetic and deleted messages are
dropped. An input longer than its sequence length keeps the instruction and the latest turns
(`keep_latest_turns`), not seqio's first tokens, which would cut the question being answered.
"""
import functools
from typing import Dict, List, Mapping, Optional

import tensorflow as tf

from xlalign_jax.data import oasst as oasst_data
from xlalign_jax.synthetic.formats import DIALOG_INSTRUCTION, format_dialog_input, language_name
from xlalign_tasks import base
from xlalign_tasks import settings

LANGS = ("de", "en", "es", "ru", "tr", "vi")
PREFIX = "xlalign_v1.oasst"


def _threads(lang: str, split: str) -> List[oasst_data.Thread]:
  threads = oasst_data.load(f"{settings.data_dir()}/oasst", strict=settings.strict())
  return [t for t in oasst_data.select(threads, split, lang) if t.ranked]


def sft_examples(lang: str, split: str) -> List[Dict]:
  examples = []
  for t in _threads(lang, split):
    best = oasst_data.best_reply(t)
    examples.append({"inputs": format_dialog_input(lang, t.turns), "targets": best.text,
                     "lang": lang, "id": f"{t.message_id}:{best.message_id}",
                     "group": t.tree_id})
  return examples


def rm_examples(lang: str, split: str) -> List[Dict]:
  return [{"inputs": format_dialog_input(lang, t.turns), "chosen": c.text, "rejected": r.text,
           "lang": lang, "id": f"{t.message_id}:{c.message_id}>{r.message_id}",
           "group": t.tree_id}
          for t in _threads(lang, split) for c, r in oasst_data.pairs(t)]


def prompt_examples(lang: str, split: str) -> List[Dict]:
  return [{"inputs": format_dialog_input(lang, t.turns), "lang": lang, "id": t.message_id,
           "group": t.tree_id}
          for t in _threads(lang, split)]


def keep_latest_turns(dataset: tf.data.Dataset, lang: str,
                      sequence_length: Optional[Mapping[str, int]] = None) -> tf.data.Dataset:
  """Token ids of an input that would be cut: the instruction's tokens, then the last tokens of
  the dialog, leaving room for EOS (appended next, by `append_eos_after_trim`). With no room for
  both, or where the instruction is not the input's first tokens, the last tokens alone."""
  if not sequence_length or sequence_length.get("inputs") is None:
    return dataset
  room = sequence_length["inputs"] - 1
  instruction = DIALOG_INSTRUCTION.format(language=language_name(lang))
  head = tf.constant(settings.VOCABULARY.encode(instruction), tf.int32)
  head_len = int(head.shape[0])

  def trim(example):
    ids = example["inputs"]
    n = tf.shape(ids)[0]
    last = lambda k: ids[tf.maximum(n - k, 0):]
    kept = last(room)
    if head_len < room:
      opens_with_head = tf.reduce_all(tf.equal(ids[:head_len], head[:tf.minimum(n, head_len)]))
      kept = tf.cond(opens_with_head, lambda: tf.concat([ids[:head_len], last(room - head_len)], 0),
                     lambda: kept)
    return {**example, "inputs": tf.cond(n > room, lambda: kept, lambda: ids)}
  return dataset.map(trim, num_parallel_calls=tf.data.AUTOTUNE)


def _preprocessors(lang: str):
  *tokenize, append_eos = base.PREPROCESSORS
  keep = functools.partial(keep_latest_turns, lang=lang)
  return (*tokenize, keep, append_eos)


for _lang in LANGS:
  for _kind, _examples, _features in (("sft", sft_examples, base.SFT_FEATURES),
                                      ("rm", rm_examples, base.PAIRWISE_RM_FEATURES),
                                      ("prompts", prompt_examples, base.PROMPTS_FEATURES)):
    base.register(f"{PREFIX}.{_lang}.{_kind}", functools.partial(_examples, _lang), _features,
                  oasst_data.SPLITS, _preprocessors(_lang))
