"""`xlalign_v1.seahorse.{lang}.{sft,rm,prompts}`: summarization from the Seahorse release files.

- sft:     article (with the paper's instruction) -> GEM reference summary; one per rated article.
- rm:      pointwise: article -> rated summary, `label` = question6 (Yes=1, No=0).
- prompts: the formatted articles alone (for best-of-n and PPO).
Splits: train, validation, test (the Seahorse files of the same names).
"""
import functools
from typing import Dict, List

from xlalign_jax.data import seahorse as seahorse_data
from xlalign_jax.synthetic.formats import format_summarization_input
from xlalign_tasks import base
from xlalign_tasks import settings

LANGS = ("de", "en", "es", "ru", "tr", "vi")
PREFIX = "xlalign_v1.seahorse"


def _load(split: str) -> seahorse_data.SeahorseSplit:
  return seahorse_data.load(f"{settings.data_dir()}/seahorse", split, strict=settings.strict())


def sft_examples(lang: str, split: str) -> List[Dict]:
  return [{"inputs": format_summarization_input(lang, a.text), "targets": a.target,
           "lang": lang, "id": a.gem_id, "group": a.gem_id}
          for a in _load(split).articles_of(lang)]


def rm_examples(lang: str, split: str) -> List[Dict]:
  return [{"inputs": format_summarization_input(lang, a.text), "targets": r.summary,
           "label": r.label, "lang": lang, "id": f"{r.gem_id}@{split}.tsv:{r.line}",
           "group": r.gem_id}
          for r, a in _load(split).rated(lang)]


def prompt_examples(lang: str, split: str) -> List[Dict]:
  return [{"inputs": format_summarization_input(lang, a.text), "lang": lang, "id": a.gem_id,
           "group": a.gem_id}
          for a in _load(split).articles_of(lang)]


for _lang in LANGS:
  base.register(f"{PREFIX}.{_lang}.sft", functools.partial(sft_examples, _lang),
                base.SFT_FEATURES, seahorse_data.SPLITS)
  base.register(f"{PREFIX}.{_lang}.rm", functools.partial(rm_examples, _lang),
                base.POINTWISE_RM_FEATURES, seahorse_data.SPLITS)
  base.register(f"{PREFIX}.{_lang}.prompts", functools.partial(prompt_examples, _lang),
                base.PROMPTS_FEATURES, seahorse_data.SPLITS)
