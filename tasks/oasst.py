"""`xlalign_v1.oasst.{lang}.{sft,rm,prompts}`: dialog from OpenAssistant message trees.

Each prompter message with at least one ranked assistant reply gives, with the dialog up to and
including it as `inputs` (after the paper's instruction):
- sft:     the best-ranked reply as `targets`;
- rm:      pairwise `chosen` / `rejected`: two ranked replies with rank_chosen < rank_rejected;
- prompts: `inputs` alone.
Splits: train, validation (by a hash of message_tree_id). Synthetic and deleted messages are
dropped.
"""
import functools
from typing import Dict, List

from xlalign_jax.data import oasst as oasst_data
from xlalign_jax.synthetic.formats import format_dialog_input
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
                     "lang": lang, "id": f"{t.message_id}:{best.message_id}"})
  return examples


def rm_examples(lang: str, split: str) -> List[Dict]:
  return [{"inputs": format_dialog_input(lang, t.turns), "chosen": c.text, "rejected": r.text,
           "lang": lang, "id": f"{t.message_id}:{c.message_id}>{r.message_id}"}
          for t in _threads(lang, split) for c, r in oasst_data.pairs(t)]


def prompt_examples(lang: str, split: str) -> List[Dict]:
  return [{"inputs": format_dialog_input(lang, t.turns), "lang": lang, "id": t.message_id}
          for t in _threads(lang, split)]


for _lang in LANGS:
  base.register(f"{PREFIX}.{_lang}.sft", functools.partial(sft_examples, _lang),
                base.SFT_FEATURES, oasst_data.SPLITS)
  base.register(f"{PREFIX}.{_lang}.rm", functools.partial(rm_examples, _lang),
                base.PAIRWISE_RM_FEATURES, oasst_data.SPLITS)
  base.register(f"{PREFIX}.{_lang}.prompts", functools.partial(prompt_examples, _lang),
                base.PROMPTS_FEATURES, oasst_data.SPLITS)
