"""Seahorse release files -> rated summaries and articles, joined by gem_id.

`{split}.tsv` (split in train, validation, test) has the columns `gem_id, worker_lang, summary,
model, question1..question6`, answers `Yes` / `No` / `Unsure`, questions 2-6 blank when question1
is `No`, and `worker_lang` in `de, es-ES, en-US, ru, tr, vi`. The reward label is question6
(Yes=1, No=0); Unsure and blank question6 give no label (counted, and kept for the article list).
`articles.jsonl` holds `{"gem_id", "text", "target"}`: the article and its GEM reference summary.
More rated rows of a split, in the same format, may sit next to the release as `{split}.NAME.tsv`
(your own systems' outputs, or the model-written summaries `xlalign run` adds to a synthetic world);
they are read after `{split}.tsv`, in name order.

Bad input is skipped and counted per file (see `skips.py`): rows with the wrong column count, an
unknown worker_lang or answer, an empty summary; article lines that are not JSON or lack a field.
"""
import csv
import dataclasses
import functools
import json
import sys
from typing import Dict, Iterator, List, Optional, Tuple

from absl import logging

from xlalign_jax.data import files
from xlalign_jax.data.skips import SkipCounter
from xlalign_jax.errors import UserError

SPLITS = ("train", "validation", "test")
QUESTIONS = tuple(f"question{i}" for i in range(1, 7))
COLUMNS = ("gem_id", "worker_lang", "summary", "model") + QUESTIONS
WORKER_LANGS = {"de": "de", "es-ES": "es", "en-US": "en", "ru": "ru", "tr": "tr", "vi": "vi"}
ANSWERS = {"yes": "Yes", "no": "No", "unsure": "Unsure", "": ""}
ARTICLES_FILE = "articles.jsonl"


@dataclasses.dataclass(frozen=True)
class Rating:
  """One rated summary: a row of a Seahorse TSV."""
  gem_id: str
  lang: str  # "de", "en", ... (from worker_lang)
  summary: str
  model: str
  answers: Tuple[str, ...]  # question1..question6: "Yes", "No", "Unsure" or ""
  line: int  # where it is in its file, for tracing

  @property
  def label(self) -> Optional[float]:
    """question6 as the reward label: Yes=1, No=0, else None."""
    return {"Yes": 1.0, "No": 0.0}.get(self.answers[5])


@dataclasses.dataclass(frozen=True)
class Article:
  gem_id: str
  text: str
  target: str  # the GEM reference summary


@dataclasses.dataclass(frozen=True)
class SeahorseSplit:
  """One split's ratings, and the articles they refer to."""
  ratings: Tuple[Rating, ...]
  articles: Dict[str, Article]

  def rated(self, lang: str) -> List[Tuple[Rating, Article]]:
    """Ratings of `lang` that have a label and an article."""
    return [(r, self.articles[r.gem_id]) for r in self.ratings
            if r.lang == lang and r.label is not None and r.gem_id in self.articles]

  def articles_of(self, lang: str) -> List[Article]:
    """The distinct articles rated in `lang`, in order of first appearance."""
    ids = dict.fromkeys(r.gem_id for r in self.ratings if r.lang == lang)
    return [self.articles[i] for i in ids if i in self.articles]


def load(seahorse_dir: str, split: str, strict: bool = False) -> SeahorseSplit:
  """Reads `{split}.tsv`, any `{split}.*.tsv` and `articles.jsonl` from `seahorse_dir` (each file
  parsed once per process)."""
  if split not in SPLITS:
    raise UserError(f"Seahorse has splits {SPLITS}, not {split!r}")
  ratings = read_ratings(f"{seahorse_dir}/{split}.tsv", strict)
  for extra in files.list_files(seahorse_dir, (f"{split}.*.tsv",)):
    ratings += read_ratings(extra, strict)
  articles = read_articles(f"{seahorse_dir}/{ARTICLES_FILE}", strict)
  missing = {r.gem_id for r in ratings} - set(articles)
  if missing:
    logging.warning("%s/%s.tsv: %d of its articles are not in %s; their rows are left out",
                    seahorse_dir, split, len(missing), ARTICLES_FILE)
  return SeahorseSplit(ratings, articles)


def read_ratings(path: str, strict: bool = False) -> Tuple[Rating, ...]:
  return parse_ratings(path, strict)[0]


def read_articles(path: str, strict: bool = False) -> Dict[str, Article]:
  return parse_articles(path, strict)[0]


def parse_ratings(path: str, strict: bool = False) -> Tuple[Tuple[Rating, ...], SkipCounter]:
  """(ratings, the counts of what was used and skipped) of one Seahorse TSV (parsed once)."""
  return _parse_ratings(files.signature(_existing(path)), strict)


def parse_articles(path: str, strict: bool = False) -> Tuple[Dict[str, Article], SkipCounter]:
  """({gem_id: article}, counts) of one articles.jsonl (parsed once)."""
  return _parse_articles(files.signature(_existing(path)), strict)


def _existing(path: str) -> str:
  if not files.exists(path):
    raise UserError(f"{path}: file not found")
  return path


@functools.lru_cache(maxsize=16)
def _parse_ratings(signature, strict: bool):
  path = signature[0]
  counter = SkipCounter(path, unit="rows", strict=strict)
  csv.field_size_limit(sys.maxsize)  # long summaries are legal
  reader = csv.reader(_decoded(path, counter), dialect="excel-tab")
  columns, ratings = COLUMNS, []
  for row in reader:
    if not row:
      continue
    if reader.line_num == 1 and row[0] == "gem_id":
      columns = _header(row, path)
      continue
    rating = _rating(dict(zip(columns, row)), len(row) == len(columns), reader.line_num, counter)
    if rating is None:
      continue
    if rating.label is None:
      counter.drop(f"question6 {rating.answers[5] or 'blank'} (no reward label)")
    counter.keep()
    ratings.append(rating)
  counter.finish()
  return tuple(ratings), counter


def _header(row: List[str], path: str) -> Tuple[str, ...]:
  if sorted(row) != sorted(COLUMNS):
    raise UserError(f"{path}: header {row} is not the Seahorse columns {list(COLUMNS)}")
  return tuple(row)


def _rating(fields: Dict[str, str], width_ok: bool, line: int,
            counter: SkipCounter) -> Optional[Rating]:
  where = f"line {line}"
  if not width_ok:
    counter.skip("wrong column count", where)
    return None
  if fields["worker_lang"] not in WORKER_LANGS:
    counter.skip("unknown worker_lang", where)
    return None
  if not fields["gem_id"].strip():
    counter.skip("empty gem_id", where)
    return None
  if not fields["summary"].strip():
    counter.skip("empty summary", where)
    return None
  answers = tuple(ANSWERS.get(fields[q].strip().lower()) for q in QUESTIONS)
  if None in answers:
    counter.skip("unknown answer", where)
    return None
  return Rating(fields["gem_id"].strip(), WORKER_LANGS[fields["worker_lang"]], fields["summary"],
                fields["model"], answers, line)


def _decoded(path: str, counter: SkipCounter) -> Iterator[str]:
  for line_no, raw in files.read_lines(path):
    try:
      yield raw.decode("utf-8")
    except UnicodeDecodeError:
      counter.skip("line not UTF-8", f"line {line_no}")
      yield "\n"  # keeps csv's line numbers in step with the file's


@functools.lru_cache(maxsize=16)
def _parse_articles(signature, strict: bool):
  path = signature[0]
  counter = SkipCounter(path, unit="articles", strict=strict)
  articles = {}
  for line_no, text in enumerate(_decoded(path, counter), start=1):
    where = f"line {line_no}"
    if not text.strip():
      continue
    try:
      obj = json.loads(text)
    except json.JSONDecodeError:
      counter.skip("line not JSON", where)
      continue
    if not isinstance(obj, dict):
      counter.skip("line not a JSON object", where)
      continue
    missing = [k for k in ("gem_id", "text", "target") if not isinstance(obj.get(k), str)]
    if missing:
      counter.skip(f"missing field {missing[0]}", where)
      continue
    if not obj["text"].strip():
      counter.skip("empty text", where)
      continue
    if obj["gem_id"] in articles:
      counter.skip("duplicate gem_id", where)
      continue
    articles[obj["gem_id"]] = Article(obj["gem_id"], obj["text"], obj["target"])
    counter.keep()
  counter.finish()
  return articles, counter
