"""Seahorse rows for summaries written by a trained model, rated by the world's raters.

Real Seahorse rates the outputs of finetuned mT5 models, so a reward model trained on it has seen
the mistakes a finetuned summarizer makes. The world's rule-based systems (documents.SYSTEMS) make
other mistakes than a small trained policy does (it writes values of the wrong relation, relations
the article never states, familiar values from other articles), and a reward model that never saw
those does not learn to check them. This module samples summaries of the Seahorse train and
validation articles from a model (in `xlalign run`, the language's SFT policy), has the simulated
raters answer questions 1-6 for each, and writes them next to the release as
`{split}.{name}.tsv`, which the Seahorse loader reads as more rows of the split. Test articles (the
evaluation prompts) are never sampled.

Usage (after an SFT stage):
  write_model_rows(DATA_DIR, "es", policy, vocab, per_article=4, temperature=0.7, seed=0,
                   name="sft_es", max_input_length=80)
"""
import os
import random
from typing import Dict

from xlalign_jax import decoding
from xlalign_jax.data import seahorse as seahorse_data
from xlalign_jax.synthetic import formats, raters, writer
from xlalign_jax.synthetic.oracle import Oracle

SPLITS = ("train", "validation")


def write_model_rows(data_dir: str, lang: str, policy, vocab, per_article: int,
                     temperature: float, seed: int, name: str, max_input_length: int,
                     max_decode_length: int = 40, progress: bool = True) -> Dict[str, dict]:
  """Writes `{data_dir}/seahorse/{split}.{name}.tsv` for train and validation; returns, per file,
  the number of rows and of question6 Yes / No answers."""
  oracle = Oracle.from_data_dir(data_dir)
  seahorse_dir = os.path.join(data_dir, "seahorse")
  sampling = decoding.SamplingConfig(per_article, max_decode_length, temperature)
  summary = {}
  for split_index, split in enumerate(SPLITS):
    # Rows written earlier only rate articles of the release, so they leave this list unchanged.
    articles = seahorse_data.load(seahorse_dir, split).articles_of(lang)
    gem_ids = [a.gem_id for a in articles]
    inputs = [formats.format_summarization_input(lang, a.text) for a in articles]
    outputs = policy.generate(vocab, inputs, sampling, seed * 1000 + split_index,
                              max_input_length, progress=progress)
    rng = random.Random(f"{seed}:{lang}:{name}:{split}")
    rows = []
    for gem_id, task_input, samples in zip(gem_ids, inputs, outputs):
      for sample in samples:
        if not sample["text"].strip():
          continue  # the loader would skip an empty summary anyway
        answers = raters.seahorse_answers(rng, oracle.assess(lang, task_input, sample["text"]))
        rows.append([gem_id, writer.WORKER_LANGS[lang], sample["text"], name] + answers)
    path = os.path.join(seahorse_dir, f"{split}.{name}.tsv")
    writer.write_tsv(path, rows)  # atomic, once: a killed stage leaves no half-written rows
    summary[os.path.basename(path)] = {"rows": len(rows),
                                       "yes": sum(r[-1] == raters.YES for r in rows),
                                       "no": sum(r[-1] == raters.NO for r in rows)}
  return summary
