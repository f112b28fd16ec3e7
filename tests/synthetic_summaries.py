"""Summaries of a small synthetic world, grouped by the simulated system that wrote them.

Real judge inputs with known true quality for the judge and win-rate tests: every article's
Seahorse rows give one summary per system (documents.SYSTEMS, best first).
"""
import collections
import csv
import json

from xlalign_jax.synthetic import write_world
from xlalign_jax.synthetic.formats import format_summarization_input
from xlalign_jax.synthetic.oracle import Oracle


def summaries(out_dir, lang="es", articles=40, seed=0):
  """(oracle, inputs, {system: outputs}) for `articles` articles in `lang`, in gem_id order."""
  write_world(str(out_dir), [lang], seed, articles_per_lang=articles, trees_per_lang=2,
              pretrain_docs_per_lang=2, spm_vocab_size=300)
  with open(out_dir / "seahorse" / "articles.jsonl", encoding="utf-8") as f:
    texts = {a["gem_id"]: a["text"] for a in map(json.loads, f)}
  by_article = collections.defaultdict(dict)
  for split in ("train", "validation", "test"):
    with open(out_dir / "seahorse" / f"{split}.tsv", encoding="utf-8", newline="") as f:
      for row in csv.DictReader(f, dialect="excel-tab"):
        by_article[row["gem_id"]][row["model"]] = row["summary"]
  gem_ids = sorted(by_article)
  inputs = [format_summarization_input(lang, texts[g]) for g in gem_ids]
  systems = {m: [by_article[g][m] for g in gem_ids] for m in by_article[gem_ids[0]]}
  return Oracle.from_data_dir(str(out_dir)), inputs, systems
