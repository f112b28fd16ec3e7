"""Model-written Seahorse rows: written next to the release for train and validation only, one per
sample, rated by the world's raters, and read back by the Seahorse loader as more rows."""
import csv
import json

import pytest

from xlalign_jax.data import seahorse as seahorse_data
from xlalign_jax.synthetic import model_rows, write_world
from xlalign_jax.synthetic.oracle import Oracle
from xlalign_jax.synthetic.writer import SEAHORSE_COLUMNS

LANG = "es"


class ReferenceWriter:
  """A policy double: sample 0 is the article's GEM reference, sample 1 the reference said twice
  (a repetition), sample 2 empty. The sampler itself is tested in test_decoding."""

  def __init__(self, targets):
    self.targets, self.prompts = targets, []

  def generate(self, vocab, prompts, sampling, seed, max_input_length, progress=True):
    del vocab, seed, max_input_length, progress
    assert sampling.num_samples == 3
    self.prompts += prompts
    return [[{"text": self.targets[p]}, {"text": self.targets[p] + " " + self.targets[p]},
             {"text": " "}] for p in prompts]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("world") / "data"
  write_world(str(root), ["en", LANG], seed=0, articles_per_lang=40, trees_per_lang=2,
              pretrain_docs_per_lang=5, spm_vocab_size=300)
  return root


def test_rows_are_rated_samples_of_train_and_validation_articles(data_dir):
  from xlalign_jax.synthetic import formats
  articles = [json.loads(l) for l in (data_dir / "seahorse" / "articles.jsonl").open()]
  targets = {formats.format_summarization_input(LANG, a["text"]): a["target"] for a in articles}
  policy = ReferenceWriter(targets)
  counts = model_rows.write_model_rows(str(data_dir), LANG, policy, None, per_article=3,
                                       temperature=0.7, seed=0, name="sft_es",
                                       max_input_length=80, progress=False)
  seahorse_dir = data_dir / "seahorse"
  q2_no = {"reference": [], "repeated": []}  # question 2: "free of repetition"
  oracle = Oracle.from_data_dir(str(data_dir))
  for split in model_rows.SPLITS:
    release = seahorse_data.read_ratings(str(seahorse_dir / f"{split}.tsv"))
    ids = list(dict.fromkeys(r.gem_id for r in release if r.lang == LANG))
    with open(seahorse_dir / f"{split}.sft_es.tsv", encoding="utf-8") as f:
      rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == list(SEAHORSE_COLUMNS)
    assert counts[f"{split}.sft_es.tsv"]["rows"] == len(rows) == 2 * len(ids)  # empty: left out
    assert [r["gem_id"] for r in rows[::2]] == ids and {r["model"] for r in rows} == {"sft_es"}
    q2_no["reference"] += [r["question2"] == "No" for r in rows[::2]]
    q2_no["repeated"] += [r["question2"] == "No" for r in rows[1::2]]
    loaded = seahorse_data.load(str(seahorse_dir), split)
    assert len(loaded.ratings) == len(release) + len(rows)
  # The raters read the written text: they call the repeated copy repetitive, the reference not.
  assert sum(q2_no["reference"]) / len(q2_no["reference"]) < 0.2
  assert sum(q2_no["repeated"]) / len(q2_no["repeated"]) > 0.8
  test_inputs = {formats.format_summarization_input(LANG, a["text"]) for a in articles
                 if "-test-" in a["gem_id"]}
  assert test_inputs and not test_inputs & set(policy.prompts)  # evaluation prompts unseen
  assert oracle.quality(LANG, policy.prompts[0], targets[policy.prompts[0]]) > 0.9


def test_rewriting_replaces_the_rows_instead_of_adding(data_dir):
  from xlalign_jax.synthetic import formats
  articles = [json.loads(l) for l in (data_dir / "seahorse" / "articles.jsonl").open()]
  targets = {formats.format_summarization_input(LANG, a["text"]): a["target"] for a in articles}
  for _ in range(2):
    model_rows.write_model_rows(str(data_dir), LANG, ReferenceWriter(targets), None, 3, 0.7, 0,
                                "sft_es", 80, progress=False)
  lines = (data_dir / "seahorse" / "train.sft_es.tsv").read_text().count("\n")
  release = seahorse_data.read_ratings(str(data_dir / "seahorse" / "train.tsv"))
  assert lines == 1 + 2 * len({r.gem_id for r in release if r.lang == LANG})


def test_a_new_world_drops_rows_rated_on_the_old_one(tmp_path):
  root = tmp_path / "data"
  sizes = dict(articles_per_lang=10, trees_per_lang=2, pretrain_docs_per_lang=5, spm_vocab_size=300)
  write_world(str(root), [LANG], seed=0, **sizes)
  (root / "seahorse" / "train.sft_es.tsv").write_text("stale")
  write_world(str(root), [LANG], seed=1, **sizes)
  assert sorted(p.name for p in (root / "seahorse").glob("*.tsv")) == [
      "test.tsv", "train.tsv", "validation.tsv"]


def test_a_world_of_fewer_languages_drops_the_others_pretraining_text(tmp_path):
  """The multilingual pretraining task reads every pretrain/*.txt of the data directory."""
  root = tmp_path / "data"
  sizes = dict(articles_per_lang=10, trees_per_lang=2, pretrain_docs_per_lang=5, spm_vocab_size=300)
  write_world(str(root), ["en", LANG], seed=0, **sizes)
  assert sorted(p.name for p in (root / "pretrain").glob("*.txt")) == ["en.txt", f"{LANG}.txt"]
  write_world(str(root), [LANG], seed=0, **sizes)
  assert [p.name for p in (root / "pretrain").glob("*.txt")] == [f"{LANG}.txt"]
