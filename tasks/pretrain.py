"""`xlalign_v1.pretrain.{lang}` and `xlalign_v1.pretrain.multilingual`: denoising pretraining on the
monolingual text of DATA_DIR/pretrain/{lang}.txt (the synthetic world writes these; real runs start
from an mT5 checkpoint instead).

Two denoising objectives alternate line by line:
- T5-style span corruption at the word level: about 15% of the words, in spans of mean length 3,
  are replaced in the input by numbered sentinels `[0]`, `[1]`, ...; the target lists each sentinel
  followed by the words it hides. It teaches the language.
- BART-style sentence permutation: the input is the line's sentences in shuffled order, the target
  the line as written. It teaches copying spans from anywhere in the input, which summarization
  (extractive at heart) needs and span corruption never exercises; with span corruption alone a
  small model spends its SFT budget learning to copy.
The noise applied to a line is fixed by its position, so data order and content are deterministic.
The multilingual task reads every language present and interleaves them line by line (equal rates).
"""
import glob
import itertools
import os
import random
import re
from typing import Dict, List

from xlalign_tasks import base
from xlalign_tasks import settings

PREFIX = "xlalign_v1.pretrain"
LANGS = ("de", "en", "es", "ru", "tr", "vi")
NOISE_DENSITY = 0.15
MEAN_SPAN = 3.0
SPLITS = ("train", "validation")
VALIDATION_EVERY = 50  # every 50th line is held out for validation


def span_corrupt(words: List[str], rng: random.Random) -> Dict[str, str]:
  """Word-level span corruption: (inputs with sentinels, targets of sentinel + hidden words)."""
  n = len(words)
  num_noise = max(1, round(n * NOISE_DENSITY)) if n > 1 else 0
  num_spans = max(1, round(num_noise / MEAN_SPAN)) if num_noise else 0
  starts = sorted(rng.sample(range(n), num_spans)) if num_spans else []
  inputs, targets, hidden_until, sentinel = [], [], -1, 0
  for i, word in enumerate(words):
    if i in starts and i > hidden_until:
      hidden_until = i + max(1, round(num_noise / num_spans)) - 1
      inputs.append(f"[{sentinel}]")
      targets.append(f"[{sentinel}]")
      sentinel += 1
    if i <= hidden_until:
      targets.append(word)
    else:
      inputs.append(word)
  return {"inputs": " ".join(inputs), "targets": " ".join(targets)}


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def permute_sentences(text: str, rng: random.Random) -> Dict[str, str]:
  """Sentence permutation: (inputs = the sentences shuffled, targets = the text as written)."""
  sentences = _SENTENCE_END.split(" ".join(text.split()))
  shuffled = sentences[:]
  rng.shuffle(shuffled)
  return {"inputs": " ".join(shuffled), "targets": " ".join(sentences)}


def _lines(lang: str, split: str) -> List[str]:
  path = os.path.join(settings.data_dir(), "pretrain", f"{lang}.txt")
  with open(path, encoding="utf-8") as f:
    lines = [line.strip() for line in f if line.strip()]
  held_out = split == "validation"
  return [l for i, l in enumerate(lines) if (i % VALIDATION_EVERY == 0) == held_out]


def examples(lang: str, split: str) -> List[Dict]:
  out = []
  for i, line in enumerate(_lines(lang, split)):
    rng = random.Random(f"{lang}/{split}/{i}")  # noise fixed by position
    noised = permute_sentences(line, rng) if i % 2 else span_corrupt(line.split(), rng)
    out.append(dict(noised, lang=lang, id=f"{lang}.txt:{split}:{i}"))
  return out


def multilingual_examples(split: str) -> List[Dict]:
  paths = sorted(glob.glob(os.path.join(settings.data_dir(), "pretrain", "*.txt")))
  per_lang = [examples(os.path.basename(p)[:-4], split) for p in paths]
  return [e for group in itertools.zip_longest(*per_lang) for e in group if e is not None]


for _lang in LANGS:
  base.register(f"{PREFIX}.{_lang}", lambda split, _l=_lang: examples(_l, split),
                base.SFT_FEATURES, SPLITS)
base.register(f"{PREFIX}.multilingual", multilingual_examples, base.SFT_FEATURES, SPLITS)
