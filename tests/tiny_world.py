"""A tiny data directory in the real formats, for the data tests: Seahorse TSVs and articles and
OpenAssistant trees in all six languages, with the shared test sentencepiece model as DATA_DIR/spm.

Every language has 3 rated articles per Seahorse split (question6 Yes, No, Unsure each) and 2
OpenAssistant trees per split, each giving 4 pairs (3 at the root, 1 after a follow-up).
"""
import csv
import json

import pytest

from conftest import SHARED_DATA
import xlalign_tasks
from xlalign_jax.data import oasst as oasst_data
from xlalign_tasks import settings
from xlalign_tasks.seahorse import LANGS

WORKER_LANG = {"de": "de", "en": "en-US", "es": "es-ES", "ru": "ru", "tr": "tr", "vi": "vi"}
SPM = SHARED_DATA / "sentencepiece" / "t5_test_sentencepiece.model"


def _tree_ids(lang, split, n):
  """The first n tree ids of `lang` that hash into `split`."""
  ids = (f"tree-{lang}-{i}" for i in range(10_000))
  return [t for t in ids if oasst_data.split_of(t) == split][:n]


def _tree(tree_id, lang):
  def msg(mid, parent, role, text, rank=None, replies=()):
    return {"message_id": mid, "parent_id": parent, "role": role, "text": text, "lang": lang,
            "rank": rank, "deleted": False, "synthetic": False, "replies": list(replies)}
  follow_up = msg(f"{tree_id}-p2", f"{tree_id}-a0", "prompter", f"and then {lang}?", replies=[
      msg(f"{tree_id}-b0", f"{tree_id}-p2", "assistant", "then good", 0),
      msg(f"{tree_id}-b1", f"{tree_id}-p2", "assistant", "then bad", 1)])
  root = msg(tree_id, None, "prompter", f"hello {lang} {tree_id}", replies=[
      msg(f"{tree_id}-a0", tree_id, "assistant", "best answer", 0, [follow_up]),
      msg(f"{tree_id}-a1", tree_id, "assistant", "middle answer", 1),
      msg(f"{tree_id}-a2", tree_id, "assistant", "worst answer", 2)])
  del root["parent_id"]
  return {"message_tree_id": tree_id, "tree_state": "ready_for_export", "prompt": root}


def write_tiny_world(root, spm):
  (root / "seahorse").mkdir(parents=True)
  (root / "oasst").mkdir()
  (root / "spm").mkdir()
  (root / "spm" / "sentencepiece.model").write_bytes(spm.read_bytes())
  articles = []
  for split in ("train", "validation", "test"):
    with open(root / "seahorse" / f"{split}.tsv", "w", newline="") as f:
      w = csv.writer(f, dialect="excel-tab")
      w.writerow(["gem_id", "worker_lang", "summary", "model"]
                 + [f"question{i}" for i in range(1, 7)])
      for lang in LANGS:
        for a in range(3):
          gem_id = f"gem_{lang}-{split}-{a}"
          articles.append({"gem_id": gem_id, "text": f"article {a} in {lang}",
                           "target": f"ref {a}"})
          for q6 in ("Yes", "No", "Unsure"):
            w.writerow([gem_id, WORKER_LANG[lang], f"summary {q6}", "mt5"] + ["Yes"] * 5 + [q6])
  with open(root / "seahorse" / "articles.jsonl", "w") as f:
    f.writelines(json.dumps(a) + "\n" for a in articles)
  with open(root / "oasst" / "trees.jsonl", "w") as f:
    for lang in LANGS:
      for split in oasst_data.SPLITS:
        f.writelines(json.dumps(_tree(t, lang)) + "\n" for t in _tree_ids(lang, split, 2))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  if not SPM.exists():
    pytest.skip(f"shared test sentencepiece model not found at {SPM}")
  root = tmp_path_factory.mktemp("world")
  write_tiny_world(root, SPM)
  return root


def use_data_dir(root, monkeypatch):
  """Makes `root` the tasks' data directory for one test (undone by monkeypatch)."""
  monkeypatch.setattr(settings, "_explicit", {})
  xlalign_tasks.configure(data_dir=str(root))
  return root


@pytest.fixture
def data_dir(world, monkeypatch):  # pylint: disable=redefined-outer-name
  """The tiny world as the configured data directory, for this test only."""
  return use_data_dir(world, monkeypatch)
