"""Seahorse TSV and articles parsing on small fabricated files; the GEM articles join."""
import argparse
import json

import pytest

from xlalign_jax import cli
from xlalign_jax.data import gem_articles, seahorse
from xlalign_jax.errors import UserError

HEADER = "gem_id\tworker_lang\tsummary\tmodel\t" + "\t".join(f"question{i}" for i in range(1, 7))


def _row(gem_id, lang, summary, answers, model="mt5"):
  return "\t".join([gem_id, lang, summary, model] + answers)


ROWS = [
    HEADER,
    _row("a-1", "en-US", "good one", ["Yes"] * 6),  # label 1
    _row("a-1", "en-US", "bad one", ["Yes"] * 5 + ["No"]),  # label 0
    _row("a-2", "de", "unsure", ["Yes"] * 5 + ["Unsure"]),  # no label, counted
    _row("a-2", "de", "unreadable", ["No"] + [""] * 5),  # question1 No: blanks, no label
    _row("a-3", "es-ES", "lower case", ["yes"] * 5 + ["no"]),  # label 0
    "a-4\ten-US\ttoo few columns",  # wrong column count
    _row("a-5", "fr-FR", "french", ["Yes"] * 6),  # unknown worker_lang
    _row("a-6", "ru", "maybe", ["Yes"] * 5 + ["Maybe"]),  # unknown answer
    _row("a-7", "vi", "  ", ["Yes"] * 6),  # empty summary
    "",
]


@pytest.fixture
def tsv(tmp_path):
  path = tmp_path / "train.tsv"
  path.write_text("\n".join(ROWS) + "\n")
  return path


def test_labels_and_counts(tsv):
  ratings, counter = seahorse.parse_ratings(str(tsv))
  assert [(r.gem_id, r.lang, r.label) for r in ratings] == [
      ("a-1", "en", 1.0), ("a-1", "en", 0.0), ("a-2", "de", None), ("a-2", "de", None),
      ("a-3", "es", 0.0)]
  assert ratings[0].line == 2 and ratings[0].answers == ("Yes",) * 6
  assert dict(counter.bad) == {"wrong column count": 1, "unknown worker_lang": 1,
                               "unknown answer": 1, "empty summary": 1}
  assert dict(counter.dropped) == {"question6 Unsure (no reward label)": 1,
                                   "question6 blank (no reward label)": 1}
  assert counter.used == 5


def test_strict_mode_raises_naming_the_row(tsv):
  with pytest.raises(UserError, match=r"train.tsv:line 7: wrong column count"):
    seahorse.parse_ratings(str(tsv), strict=True)


def test_zero_usable_rows_is_an_error_naming_the_file(tmp_path):
  path = tmp_path / "validation.tsv"
  path.write_text("\n".join([HEADER, "x\ty", _row("b", "xx", "s", ["Yes"] * 6)]) + "\n")
  with pytest.raises(UserError, match=r"validation.tsv: no usable rows"):
    seahorse.parse_ratings(str(path))


def test_header_with_other_columns_is_an_error(tmp_path):
  path = tmp_path / "test.tsv"
  path.write_text("gem_id\tlang\tsummary\n")
  with pytest.raises(UserError, match="not the Seahorse columns"):
    seahorse.parse_ratings(str(path))


def test_quoted_summary_with_tab_and_newline(tmp_path):
  path = tmp_path / "train.tsv"
  path.write_text(HEADER + "\n" + _row("c", "tr", '"a ""quoted""\tsummary\nover lines"',
                                       ["Yes"] * 6) + "\n")
  (rating,) = seahorse.read_ratings(str(path))
  assert rating.summary == 'a "quoted"\tsummary\nover lines'


def test_join_with_articles(tsv, tmp_path):
  lines = [{"gem_id": "a-1", "text": "article one", "target": "ref one"},
           {"gem_id": "a-2", "text": "article two", "target": "ref two"},
           {"gem_id": "a-2", "text": "duplicate", "target": "x"},
           {"gem_id": "a-9", "text": "", "target": "empty text"},
           {"gem_id": "a-8", "text": "no target"}]
  (tmp_path / "articles.jsonl").write_text(
      "\n".join(json.dumps(l) for l in lines) + "\nnot json\n")
  articles, counter = seahorse.parse_articles(str(tmp_path / "articles.jsonl"))
  assert sorted(articles) == ["a-1", "a-2"]
  assert dict(counter.bad) == {"duplicate gem_id": 1, "empty text": 1,
                               "missing field target": 1, "line not JSON": 1}
  data = seahorse.load(str(tmp_path), "train")
  assert [(r.summary, a.text) for r, a in data.rated("en")] == [
      ("good one", "article one"), ("bad one", "article one")]
  assert data.rated("de") == []  # no labels
  assert [a.gem_id for a in data.articles_of("de")] == ["a-2"]
  assert data.articles_of("es") == []  # a-3 has no article


def test_extra_rated_files_of_a_split_are_read_after_the_release(tsv, tmp_path):
  (tmp_path / "articles.jsonl").write_text(
      json.dumps({"gem_id": "a-1", "text": "article one", "target": "ref one"}) + "\n")
  release = [r.summary for r, _ in seahorse.load(str(tmp_path), "train").rated("en")]
  (tmp_path / "train.mine.tsv").write_text(
      HEADER + "\n" + _row("a-1", "en-US", "my system's summary", ["Yes"] * 5 + ["No"]) + "\n")
  (tmp_path / "validation.mine.tsv").write_text(
      HEADER + "\n" + _row("a-1", "en-US", "not train", ["Yes"] * 6) + "\n")
  rated = seahorse.load(str(tmp_path), "train").rated("en")
  assert [r.summary for r, _ in rated] == release + ["my system's summary"]
  assert rated[-1][0].label == 0.0


def test_unknown_split_is_an_error(tmp_path):
  with pytest.raises(UserError, match="splits"):
    seahorse.load(str(tmp_path), "dev")


def test_gem_join_on_fabricated_records():
  wanted = gem_articles.wanted_ids({
      "train": ["mlsum_de-validation-1", "xsum-validation-7"],
      "validation": ["mlsum_de-validation-2"],
      "test": ["mlsum_de-test-3", "xlsum_english-test-4"],
  })
  assert wanted == {("mlsum_de", "validation"): {"mlsum_de-validation-1", "mlsum_de-validation-2"},
                    ("xsum", "validation"): {"xsum-validation-7"},
                    ("mlsum_de", "test"): {"mlsum_de-test-3"},
                    ("xlsum_english", "test"): {"xlsum_english-test-4"}}
  gem = {
      ("mlsum_de", "validation"): [
          {"gem_id": b"mlsum_de-validation-1", "text": b"Artikel", "target": b"Ziel",
           "references": [b"Ziel"]},
          {"gem_id": b"mlsum_de-validation-9", "text": b"not rated", "target": b"x"}],
      ("mlsum_de", "test"): [
          {"gem_id": b"mlsum_de-test-3", "text": b"Test", "target": b"", "references": [b"R1"]}],
      ("xsum", "validation"): [
          {"gem_id": b"xsum-validation-7", "document": b"Doc", "target": b"T", "references": []}],
  }
  articles, missing = gem_articles.join(wanted, lambda c, s: gem.get((c, s)))
  assert articles == [
      {"gem_id": "mlsum_de-test-3", "text": "Test", "target": "R1"},
      {"gem_id": "mlsum_de-validation-1", "text": "Artikel", "target": "Ziel"},
      {"gem_id": "xsum-validation-7", "text": "Doc", "target": "T"}]
  assert missing == {"mlsum_de": 1, "xlsum_english": 1}


def test_gem_articles_without_tfds_data_is_a_clear_error(tmp_path, capsys):
  rc = cli.main(["gem-articles", "--tfds_data_dir", str(tmp_path / "tfds"), "--seahorse_dir",
                 str(tmp_path), "--out", str(tmp_path / "articles.jsonl")])
  assert rc == 2 and "--tfds_data_dir" in capsys.readouterr().err


def test_gem_articles_reports_unprepared_configs(tsv, tmp_path):
  (tmp_path / "tfds").mkdir()
  args = argparse.Namespace(tfds_data_dir=str(tmp_path / "tfds"), seahorse_dir=str(tsv.parent),
                            out=str(tmp_path / "articles.jsonl"))
  with pytest.raises(UserError, match="prepare these TFDS datasets"):
    gem_articles.run(args)
