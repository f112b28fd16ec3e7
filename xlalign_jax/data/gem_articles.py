"""`xlalign gem-articles`: build `seahorse/articles.jsonl` from GEM through tensorflow-datasets.

  xlalign gem-articles --tfds_data_dir ~/tensorflow_datasets --seahorse_dir DATA_DIR/seahorse \
      --out DATA_DIR/seahorse/articles.jsonl

Seahorse rates summaries of GEM articles: its train and validation rows were written for GEM
*validation* articles, its test rows for GEM *test* articles. A gem_id starts with its GEM config
(`mlsum_de-validation-42`), so the command reads, for each config the rows name, that GEM split from
the TFDS data dir (prepare them first, e.g. `tfds build gem/mlsum_de --data_dir D`; nothing is
downloaded here), keeps the rated articles and writes `{"gem_id", "text", "target"}` lines. gem_ids
found nowhere (a config absent from the data dir, or not in TFDS GEM at all) are counted by config.
"""
import collections
import json
import os
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from xlalign_jax.data import seahorse
from xlalign_jax.errors import UserError

GEM_SPLIT_OF = {"train": "validation", "validation": "validation", "test": "test"}
_TEXT_FIELDS = ("text", "document", "source")  # mlsum, xsum, wiki_lingua

Wanted = Dict[Tuple[str, str], Set[str]]  # (GEM config, GEM split) -> gem_ids
ReadSplit = Callable[[str, str], Optional[Iterable[Mapping]]]  # None: config not available


def wanted_ids(gem_ids_by_split: Mapping[str, Iterable[str]]) -> Wanted:
  """The GEM config and split that each Seahorse split's gem_ids must be looked up in."""
  wanted = collections.defaultdict(set)
  for split, gem_ids in gem_ids_by_split.items():
    for gem_id in gem_ids:
      wanted[(gem_id.split("-")[0], GEM_SPLIT_OF[split])].add(gem_id)
  return dict(wanted)


def article_of(record: Mapping) -> Dict[str, str]:
  """A GEM record -> {"gem_id", "text", "target"}; the target falls back to the first reference."""
  text = next((_str(record[k]) for k in _TEXT_FIELDS if k in record), "")
  references = [_str(r) for r in record.get("references", ())]
  target = _str(record.get("target", "")) or (references[0] if references else "")
  return {"gem_id": _str(record["gem_id"]), "text": text, "target": target}


def join(wanted: Wanted, read_split: ReadSplit) -> Tuple[List[Dict[str, str]], Dict[str, int]]:
  """(articles in a stable order, {config: number of gem_ids not found})."""
  articles, missing = [], collections.Counter()
  for (config, split), gem_ids in sorted(wanted.items()):
    records = read_split(config, split)
    found = set()
    for record in records or ():
      article = article_of(record)
      if article["gem_id"] in gem_ids and article["gem_id"] not in found:
        found.add(article["gem_id"])
        articles.append(article)
    if len(found) < len(gem_ids):
      missing[config] += len(gem_ids) - len(found)
  return articles, dict(missing)


def _str(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def tfds_reader(tfds_data_dir: str) -> ReadSplit:
  """Reads `gem/{config}` splits already prepared in `tfds_data_dir` (never downloads)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  def read_split(config: str, split: str):
    try:
      builder = tfds.builder(f"gem/{config}", data_dir=tfds_data_dir)
    except ValueError:  # DatasetNotFoundError, or a config TFDS GEM lacks
      return None
    if not builder.is_prepared():
      return None
    return builder.as_dataset(split=split, shuffle_files=False).as_numpy_iterator()

  return read_split


def add_arguments(parser) -> None:
  parser.add_argument("--tfds_data_dir", required=True, help="TFDS data dir with GEM prepared")
  parser.add_argument("--seahorse_dir", required=True, help="directory of Seahorse's {split}.tsv")
  parser.add_argument("--out", required=True, help="articles.jsonl to write")


def run(args) -> None:
  if not os.path.isdir(args.tfds_data_dir):
    raise UserError(f"--tfds_data_dir {args.tfds_data_dir} does not exist")
  tsvs = {s: f"{args.seahorse_dir}/{s}.tsv" for s in GEM_SPLIT_OF
          if os.path.exists(f"{args.seahorse_dir}/{s}.tsv")}
  if not tsvs:
    raise UserError(f"{args.seahorse_dir}: no Seahorse train.tsv, validation.tsv or test.tsv")
  wanted = wanted_ids({s: {r.gem_id for r in seahorse.read_ratings(p)} for s, p in tsvs.items()})
  articles, missing = join(wanted, tfds_reader(args.tfds_data_dir))
  if not articles:
    needed = ", ".join(sorted({f"gem/{c} ({s})" for c, s in wanted}))
    raise UserError(f"{args.tfds_data_dir}: none of the rated GEM articles found; prepare "
                    f"these TFDS datasets there first: {needed}")
  with open(args.out, "w", encoding="utf-8") as f:
    for article in articles:
      f.write(json.dumps(article, ensure_ascii=False) + "\n")
  print(f"wrote {len(articles)} articles to {args.out}")
  for config, n in sorted(missing.items()):
    print(f"  {n} gem_ids of {config} not found (not prepared in {args.tfds_data_dir}, or not in "
          "TFDS GEM)")
