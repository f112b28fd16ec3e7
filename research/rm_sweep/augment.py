"""FactCC-style rows for a reward model: reference summaries (Yes) and rule-based corruptions of
them (No), labelled by construction, added to a world's rated Seahorse train rows.

  python research/rm_sweep/augment.py DATA_DIR OUT_DATA_DIR --lang en [--kinds swap,absent,relation]
      [--per_article 3] [--seed 0] [--split train] [--only]

Kryscinski et al. (2020) train factual-consistency classifiers on such transformations (entity and
number swaps, among others). The world's raters miss wrong facts half the time and see quality
through noise of 0.5 (synthetic/raters.py), so the rated rows hardly say which facts are wrong;
these rows do. Corruptions of one fact sentence of the reference, the others kept (as long as the
Yes row, so length cannot separate them):
  swap      its value replaced by another value of the article (a binding error)
  absent    its value replaced by one the article does not state (a name or number of the world)
  relation  its relation replaced by one the article does not give for that entity
  repeat    a fact sentence stated twice (longer than the reference)
OUT_DATA_DIR: a copy of DATA_DIR (other files linked) whose seahorse/SPLIT.tsv (train by default)
has the extra rows (model "augment_<kind>" or "augment_reference"), the other splits unchanged.
"""
import argparse
import collections
import json
import os
import random
import shutil

from xlalign_jax.synthetic import formats
from xlalign_jax.synthetic import grammar as grammar_lib
from xlalign_jax.synthetic.oracle import Oracle
from xlalign_jax.synthetic.writer import SEAHORSE_COLUMNS, WORKER_LANGS


def facts_of(grammar, text):
  """[(sentence, parsed)] of the text's fact sentences."""
  out = []
  for sentence in grammar_lib.split_sentences(text):
    parsed = grammar.parse_sentence(sentence)
    if parsed is not None and parsed.kind == "fact":
      out.append((sentence, parsed))
  return out


def replace_token(sentence, old, new):
  """The sentence with its whitespace token `old` (trailing period kept) replaced by `new`."""
  words = sentence.split()
  hits = [i for i, w in enumerate(words) if w.rstrip(".") == old]
  if len(hits) != 1:
    return None
  i = hits[0]
  words[i] = new + words[i][len(old):]
  return " ".join(words)


def corrupt(rng, grammar, kind, ref_facts, article_facts, world_values, relations):
  """One corrupted summary (str) or None when this kind does not apply to the reference."""
  i = rng.randrange(len(ref_facts))
  sentences = [s for s, _ in ref_facts]
  sentence, parsed = ref_facts[i]
  value, relation, entity = parsed.slot("V"), parsed.slot("R"), parsed.slot("E")
  is_number = value.isdigit()
  in_article = {p.slot("V") for _, p in article_facts} | {p.slot("E") for _, p in article_facts}
  if kind == "repeat":
    return " ".join(sentences[:i + 1] + [sentence] + sentences[i + 1:])
  if kind == "swap":
    pool = sorted({p.slot("V") for _, p in article_facts
                   if p.slot("V") != value and p.slot("V").isdigit() == is_number})
    new = replace_token(sentence, value, rng.choice(pool)) if pool else None
  elif kind == "absent":
    pool = [v for v in world_values[is_number] if v not in in_article]
    new = replace_token(sentence, value, rng.choice(pool))
  elif kind == "relation":
    given = {p.slot("R") for _, p in article_facts if p.slot("E") == entity}
    pool = sorted(r for r in relations if r not in given)
    new = replace_token(sentence, grammar.word(relation), grammar.word(rng.choice(pool)))
    if new is not None and grammar.parse_sentence(new) is None:  # gender agreement etc.
      new = None
  else:
    raise ValueError(kind)
  if new is None:
    return None
  return " ".join(sentences[:i] + [new] + sentences[i + 1:])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("data_dir")
  parser.add_argument("out_dir")
  parser.add_argument("--lang", required=True)
  parser.add_argument("--kinds", default="swap,absent,relation")
  parser.add_argument("--per_article", type=int, default=3)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--split", default="train", help="which split gets the rows")
  parser.add_argument("--only", action="store_true",
                      help="that split keeps only these rows (e.g. a held-out check of them)")
  args = parser.parse_args()
  rng = random.Random(args.seed)
  oracle = Oracle.from_data_dir(args.data_dir)
  grammar = oracle.world.grammars[args.lang]
  os.makedirs(os.path.join(args.out_dir, "seahorse"), exist_ok=True)
  for name in os.listdir(args.data_dir):
    if name != "seahorse" and not os.path.exists(os.path.join(args.out_dir, name)):
      os.symlink(os.path.abspath(os.path.join(args.data_dir, name)),
                 os.path.join(args.out_dir, name))
  src = os.path.join(args.data_dir, "seahorse")
  for name in {"articles.jsonl", "train.tsv", "validation.tsv", "test.tsv"} - {f"{args.split}.tsv"}:
    shutil.copy(os.path.join(src, name), os.path.join(args.out_dir, "seahorse", name))
  with open(os.path.join(src, "articles.jsonl"), encoding="utf-8") as f:
    articles = {a["gem_id"]: a for a in map(json.loads, f)}
  with open(os.path.join(src, f"{args.split}.tsv"), encoding="utf-8") as f:
    lines = f.read().splitlines()
  header = lines[0].split("\t")
  assert tuple(header) == SEAHORSE_COLUMNS, header
  split_ids = sorted({l.split("\t")[0] for l in lines[1:]
                      if l.split("\t")[1] == WORKER_LANGS[args.lang]})
  world_values = {True: set(), False: set()}
  relations = set()
  for a in articles.values():
    for _, p in facts_of(grammar, a["text"]):
      world_values[p.slot("V").isdigit()].add(p.slot("V"))
      relations.add(p.slot("R"))
  world_values = {k: sorted(v) for k, v in world_values.items()}
  kinds = args.kinds.split(",")
  rows, counts = [], collections.Counter()
  for gem_id in split_ids:
    article = articles[gem_id]
    ref_facts = facts_of(grammar, article["target"])
    article_facts = facts_of(grammar, article["text"])
    if not ref_facts:
      counts["skipped: reference without facts"] += 1
      continue
    task_input = formats.format_summarization_input(args.lang, article["text"])
    made = [("reference", article["target"])]
    for k in range(args.per_article):
      kind = kinds[k % len(kinds)]
      text = corrupt(rng, grammar, kind, ref_facts, article_facts, world_values, relations)
      if text is None:
        counts[f"skipped: {kind} does not apply"] += 1
      else:
        made.append((kind, text))
    for kind, text in made:
      label = "Yes" if kind == "reference" else "No"
      quality = oracle.assess(args.lang, task_input, text).quality
      counts[f"{kind} ({label}), mean oracle quality"] += quality
      counts[f"{kind} rows"] += 1
      rows.append([gem_id, WORKER_LANGS[args.lang], text, f"augment_{kind}"] + ["Yes"] * 5
                  + [label])
  kept = lines[:1] if args.only else lines
  with open(os.path.join(args.out_dir, "seahorse", f"{args.split}.tsv"), "w",
            encoding="utf-8") as f:
    f.write("\n".join(kept + ["\t".join(r) for r in rows]) + "\n")
  for key in sorted(counts):
    if key.endswith("rows"):
      kind = key[:-len(" rows")]
      label = "Yes" if kind == "reference" else "No"
      print(f"{kind}: {counts[key]} rows ({label}), mean oracle quality "
            f"{counts[f'{kind} ({label}), mean oracle quality'] / counts[key]:.3f}")
    elif key.startswith("skipped"):
      print(f"{key}: {counts[key]}")
  print(f"{len(split_ids)} {args.split} articles; {len(rows)} rows added to {len(kept) - 1}")


if __name__ == "__main__":
  main()
