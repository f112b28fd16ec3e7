"""Write the synthetic world in the real data formats (the embedded default data).

  DATA_DIR/seahorse/{train,validation,test}.tsv   Seahorse release TSV
  DATA_DIR/seahorse/articles.jsonl                {"gem_id", "text", "target"}
  DATA_DIR/oasst/synthetic.trees.jsonl            OpenAssistant message trees (export format)
  DATA_DIR/pretrain/{lang}.txt                    monolingual text, one document per line
  DATA_DIR/spm/sentencepiece.model, .vocab        the world's sentencepiece model
  DATA_DIR/world.json                             seed, languages and sizes: rebuilds the world
  DATA_DIR/README.md                              says that this is synthetic

Every random choice comes from a generator seeded by (seed, language, purpose), and files are
written in a fixed order, so a seed and a language list give byte-identical files.
"""
import csv
import dataclasses
import glob
import json
import os
import random
from typing import Dict, List

from xlalign_jax import fileio
from xlalign_jax.errors import UserError
from xlalign_jax.synthetic import content, dialogs, documents, formats, languages, raters, spm
from xlalign_jax.synthetic import world as world_lib
from xlalign_jax.synthetic.oracle import Oracle

SEAHORSE_COLUMNS = ("gem_id", "worker_lang", "summary", "model", "question1", "question2",
                    "question3", "question4", "question5", "question6")
WORKER_LANGS = {"de": "de", "en": "en-US", "es": "es-ES", "ru": "ru", "tr": "tr", "vi": "vi"}
# Two GEM datasets per language (gem_id prefixes); 70% of articles come from the first.
GEM_DATASETS = {"de": ("mlsum_de", "wiki_lingua_german_de"),
                "en": ("xsum", "xlsum_english"),
                "es": ("mlsum_es", "xlsum_spanish"),
                "ru": ("xlsum_russian", "wiki_lingua_russian_ru"),
                "tr": ("xlsum_turkish", "wiki_lingua_turkish_tr"),
                "vi": ("xlsum_vietnamese", "wiki_lingua_vietnamese_vi")}
OASST_FILE = "synthetic.trees.jsonl"
NOTE = "synthetic stand-ins, not real languages"
# Seahorse split of an article by its index modulo 10; train and validation rows join GEM
# validation articles, test rows join GEM test articles, as in the real release.
_SPLIT_OF_DIGIT = ["train"] * 7 + ["validation"] + ["test"] * 2
_SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Size knobs; the defaults make a world the CPU demo can train on in minutes."""
  entities_per_type: int = world_lib.DEFAULT_ENTITIES_PER_TYPE
  articles_per_lang: int = 300  # x 5 systems = Seahorse rows per language
  trees_per_lang: int = 300
  pretrain_docs_per_lang: int = 3000
  spm_vocab_size: int = 4000  # leaves room for 96 extra ids in a 4096-row embedding


def write_world(out_dir: str, langs: List[str], seed: int, **size_knobs) -> Dict[str, int]:
  """Writes the world for `langs` under `out_dir`; returns line counts per written file."""
  langs = [code for code in languages.LANG_CODES if code in languages.check_langs(langs)]
  try:
    sizes = Sizes(**size_knobs)
  except TypeError as exc:
    raise UserError(f"unknown size knob ({exc}); known: "
                    f"{', '.join(f.name for f in dataclasses.fields(Sizes))}") from None
  _check_out_dir(out_dir)
  # An earlier world's files that this one does not rewrite but tasks would read: rated rows of
  # its articles (model_rows.py) and pretraining text of languages this world lacks.
  stale = glob.glob(os.path.join(out_dir, "seahorse", "*.*.tsv")) + [
      path for path in glob.glob(os.path.join(out_dir, "pretrain", "*.txt"))
      if os.path.basename(path)[:-len(".txt")] not in langs]
  for path in stale:
    os.remove(path)
  oracle = Oracle(world_lib.build_world(seed, sizes.entities_per_type))
  counts: Dict[str, int] = {}
  spm_lines = _write_seahorse(out_dir, oracle, langs, seed, sizes, counts)
  spm_lines += _write_oasst(out_dir, oracle, langs, seed, sizes, counts)
  spm_lines += _write_pretrain(out_dir, oracle.world, langs, seed, sizes, counts)
  model_path = spm.train(spm_lines, _glossary(oracle.world, langs), os.path.join(out_dir, "spm"),
                         sizes.spm_vocab_size)
  with open(model_path[:-len(".model")] + ".vocab", encoding="utf-8") as f:
    counts["spm/sentencepiece.vocab"] = sum(1 for _ in f)
  meta = {"synthetic": True, "note": NOTE, "seed": seed, "langs": langs,
          "stand_ins": {code: f"synthetic stand-in for {formats.LANGUAGE_NAMES[code]}"
                        for code in langs},
          **dataclasses.asdict(sizes),
          "systems": list(documents.SYSTEMS),
          "rater_artifacts": {code: languages.SPECS[code].artifact for code in langs},
          "counts": counts}
  with open(os.path.join(out_dir, "world.json"), "w", encoding="utf-8") as f:
    json.dump(meta, f, indent=2, ensure_ascii=False)
    f.write("\n")
  with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
    f.write(_README.format(seed=seed, langs=",".join(langs)))
  return counts


def _write_seahorse(out_dir: str, oracle: Oracle, langs: List[str], seed: int, sizes: Sizes,
                    counts: Dict[str, int]) -> List[str]:
  """Writes the Seahorse TSVs and articles; returns their text for the sentencepiece model."""
  rows_by_split, articles, text = {split: [] for split in _SPLITS}, [], []
  for lang in langs:
    rows, lang_articles = _seahorse(random.Random(f"{seed}:{lang}:seahorse"), oracle, lang, sizes)
    for split, split_rows in rows.items():
      rows_by_split[split] += split_rows
    articles += lang_articles
    text += [formats.format_summarization_input(lang, a["text"]) for a in lang_articles]
  for split, rows in rows_by_split.items():
    random.Random(f"{seed}:{split}:order").shuffle(rows)
    counts[f"seahorse/{split}.tsv"] = write_tsv(
        os.path.join(out_dir, "seahorse", f"{split}.tsv"), rows)
    text += [row[2] for row in rows]
  counts["seahorse/articles.jsonl"] = _write_jsonl(
      os.path.join(out_dir, "seahorse", "articles.jsonl"), articles)
  return text + [a["target"] for a in articles]


def _write_oasst(out_dir: str, oracle: Oracle, langs: List[str], seed: int, sizes: Sizes,
                 counts: Dict[str, int]) -> List[str]:
  """Writes the OpenAssistant trees; returns their text for the sentencepiece model."""
  trees = []
  for lang in langs:
    writer = dialogs.TreeWriter(random.Random(f"{seed}:{lang}:oasst"), oracle, lang)
    trees += [writer.tree() for _ in range(sizes.trees_per_lang)]
  trees = [dict(tree, prompt=dialogs.order_fields(tree["prompt"])) for tree in trees]
  counts[f"oasst/{OASST_FILE}"] = _write_jsonl(os.path.join(out_dir, "oasst", OASST_FILE), trees)
  return _dialog_lines(trees)


def _write_pretrain(out_dir: str, world: world_lib.World, langs: List[str], seed: int,
                    sizes: Sizes, counts: Dict[str, int]) -> List[str]:
  """Writes the monolingual text; returns it for the sentencepiece model."""
  text = []
  for lang in langs:
    docs = _pretrain_docs(random.Random(f"{seed}:{lang}:pretrain"), world, lang,
                          sizes.pretrain_docs_per_lang)
    counts[f"pretrain/{lang}.txt"] = _write_lines(
        os.path.join(out_dir, "pretrain", f"{lang}.txt"), docs)
    text += docs
  return text


_README = """# Synthetic world (not real data)

Written by `xlalign synth --seed {seed} --langs {langs}`. The six languages are synthetic
stand-ins for de, en, es, ru, tr and vi, not the real languages; entities, facts, summaries,
ratings and dialogs are generated by code (xlalign_jax/synthetic). The files use the real
Seahorse and OpenAssistant formats so that the same loaders read real and synthetic data.
world.json records everything needed to rebuild the world and its oracle.
"""


def _check_out_dir(out_dir: str):
  """Refuses to overwrite real data: only an empty directory or an earlier world is replaced."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise UserError(f"--out {out_dir} exists and is not a directory")
  real = [d for d in ("seahorse", "oasst") if os.path.isdir(os.path.join(out_dir, d))]
  if real and not os.path.isfile(os.path.join(out_dir, "world.json")):
    raise UserError(f"{out_dir} holds {'/'.join(real)} data that is not a synthetic world "
                    "(no world.json); refusing to overwrite it, choose another --out")


def _seahorse(rng: random.Random, oracle: Oracle, lang: str, sizes: Sizes):
  """Seahorse rows by split and the articles they join, for one language."""
  grammar = oracle.world.grammars[lang]
  rows = {split: [] for split in _SPLITS}
  articles, next_index = [], {}
  for i in range(sizes.articles_per_lang):
    split = _SPLIT_OF_DIGIT[i % 10]
    gem_split = "test" if split == "test" else "validation"
    dataset = GEM_DATASETS[lang][rng.random() < 0.3]
    index = next_index.get((dataset, gem_split), 0)
    next_index[(dataset, gem_split)] = index + 1
    gem_id = f"{dataset}-{gem_split}-{index}"
    article = documents.make_article(rng, oracle.world.kb)
    text = content.render(grammar, article.items)
    task_input = formats.format_summarization_input(lang, text)
    reference = [content.fact_item(f) for f in article.reference()]
    articles.append({"gem_id": gem_id, "text": text, "target": content.render(grammar, reference)})
    for system in documents.SYSTEMS:
      items, artifact, out_lang = documents.system_summary(rng, system, article, lang,
                                                           oracle.world.kb)
      summary = content.render(oracle.world.grammars[out_lang], items, artifact)
      answers = raters.seahorse_answers(rng, oracle.assess(lang, task_input, summary))
      rows[split].append([gem_id, WORKER_LANGS[lang], summary, system] + answers)
  return rows, articles


def _pretrain_docs(rng: random.Random, world: world_lib.World, lang: str, count: int) -> List[str]:
  """`count` monolingual pretraining documents in `lang`."""
  return [content.render(world.grammars[lang], _pretrain_items(rng, world)) for _ in range(count)]


def _pretrain_items(rng: random.Random, world: world_lib.World) -> List[content.Item]:
  """An article, or now and then a question with its answer (so every construction is seen)."""
  items = documents.make_article(rng, world.kb).items
  if rng.random() < 0.3:
    question_items, turn = dialogs.first_turn(rng, world.kb)
    items = question_items + [content.fact_item(f) for f in turn.answer()]
  return items


def _dialog_lines(trees: List[Dict]) -> List[str]:
  """Message texts, and each prompter message's context as the dialog tasks format it."""
  lines = []

  def walk(message, turns):
    lines.append(message["text"])
    turns = turns + [(message["role"], message["text"])]
    if message["role"] == "prompter":
      lines.append(formats.format_dialog_input(message["lang"], turns))
    for reply in message["replies"]:
      walk(reply, turns)

  for tree in trees:
    walk(tree["prompt"], [])
  return lines


def _glossary(world: world_lib.World, langs: List[str]) -> List[str]:
  """Every word of the languages' lexicons and of the task instructions, in a fixed order."""
  words = sorted(t for t, code in world.token_langs.items() if code in langs)
  for lang in langs:
    instructions = (formats.format_summarization_input(lang, "")
                    + formats.format_dialog_input(lang, [("prompter", ""), ("assistant", "")]))
    words += [w.strip(".:") for w in instructions.split() if w.strip(".:") not in words]
  return words


def _mkdirs(path: str):
  os.makedirs(os.path.dirname(path), exist_ok=True)


def _write_lines(path: str, lines: List[str]) -> int:
  _mkdirs(path)
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line in lines)
  return len(lines)


def write_tsv(path: str, rows: List[List[str]]) -> int:
  with fileio.open_for_write(path, newline="") as f:
    writer = csv.writer(f, delimiter="\t", lineterminator="\n")
    writer.writerow(SEAHORSE_COLUMNS)
    writer.writerows(rows)
  return len(rows)


def _write_jsonl(path: str, records: List[Dict]) -> int:
  _mkdirs(path)
  with open(path, "w", encoding="utf-8") as f:
    for record in records:
      f.write(json.dumps(record, ensure_ascii=False) + "\n")
  return len(records)
