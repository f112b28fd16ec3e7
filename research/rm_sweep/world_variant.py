"""Seahorse rows of one language rated by variant raters, beside an existing world's other files.

  python research/rm_sweep/world_variant.py OUT_DIR WORLD_DATA_DIR [--lang es] [--articles 6000]
      [--noise 0.3] [--miss_wrong_facts 0.2] [--extrinsic 0.3]

Copies WORLD_DATA_DIR (its sentencepiece model too, so token ids match the world's SFT policies)
without its data files, then writes `seahorse/` for --lang with the world's own generator after
patching the knobs under study: the raters' noise and how often they miss wrong facts
(synthetic/raters.py), and a sixth system mistake, "extrinsic", that replaces one stated fact with
a true fact about the same entity that the article does not state (what a policy that learnt the
world's facts in pretraining writes). Its rate is per system: --extrinsic for palm_1shot,
mt5_small and t5_base, half of it for mt5_xxl.
"""
import argparse
import json
import os
import shutil

from xlalign_jax.synthetic import content, documents, raters, writer
from xlalign_jax.synthetic.oracle import Oracle

_EXTRINSIC_SHARE = {"mt5_xxl": 0.5, "palm_1shot": 1.0, "mt5_small": 1.0, "t5_base": 1.0}


def with_extrinsic_facts(system_summary, rate: float):
  """`documents.system_summary`, then (at `rate` x the system's share) one fact swapped for a true
  fact of the same entity that the article does not state."""
  def summary(rng, system, article, lang, kb):
    items, artifact, out_lang = system_summary(rng, system, article, lang, kb)
    facts = [i for i, item in enumerate(items) if item.kind == "fact"]
    if facts and rng.random() < rate * _EXTRINSIC_SHARE.get(system, 0.0):
      stated = {f for f, _ in article.facts}
      i = rng.choice(facts)
      entity = dict(items[i].values)["E"]
      unstated = [f for f in kb.facts[entity] if f not in stated]
      if unstated:
        items = list(items)
        items[i] = content.fact_item(rng.choice(unstated))
    return items, artifact, out_lang
  return summary


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("out_dir")
  parser.add_argument("world_data_dir")
  parser.add_argument("--lang", default="es")
  parser.add_argument("--articles", type=int, default=1500)
  parser.add_argument("--noise", type=float, default=raters.NOISE)
  parser.add_argument("--miss_wrong_facts", type=float, default=raters.MISS_WRONG_FACTS)
  parser.add_argument("--extrinsic", type=float, default=0.0)
  args = parser.parse_args()
  raters.NOISE, raters.MISS_WRONG_FACTS = args.noise, args.miss_wrong_facts
  if args.extrinsic:
    documents.system_summary = with_extrinsic_facts(documents.system_summary, args.extrinsic)
  shutil.copytree(args.world_data_dir, args.out_dir,
                  ignore=shutil.ignore_patterns("seahorse", "pretrain", "oasst"))
  with open(os.path.join(args.world_data_dir, "world.json"), encoding="utf-8") as f:
    meta = json.load(f)
  sizes = writer.Sizes(articles_per_lang=args.articles,
                       entities_per_type=meta["entities_per_type"])
  counts = {}
  writer._write_seahorse(args.out_dir, Oracle.from_data_dir(args.world_data_dir), [args.lang],
                         meta["seed"], sizes, counts)
  print(counts)


if __name__ == "__main__":
  main()
