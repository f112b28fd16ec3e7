"""OpenAssistant trees -> pairs, SFT targets and prompts, on the 20 real trees in ../shared/data.

The pair rule is checked against a straightforward re-implementation that walks the JSON itself.
"""
import gzip
import hashlib
import json
import shutil

import pytest

from xlalign_jax.data import oasst
from xlalign_jax.errors import UserError
from xlalign_jax.synthetic.formats import format_dialog_input
import xlalign_tasks
from xlalign_tasks import oasst as oasst_tasks
from xlalign_tasks import settings

TREES = "oasst/en_20_tree.jsonl"


def reference_pairs(path, lang):
  """{(prompter id, chosen id, rejected id): (context texts, chosen text, rejected text)}.

  The rule, read literally: for each prompter message, among its non-deleted assistant replies with
  a non-null rank, every (i, j) with rank_i < rank_j; deleted and synthetic messages are dropped
  with their replies, and the context is the thread up to and including the prompter message.
  """
  pairs = {}

  def walk(msg, context):
    if msg.get("deleted") or msg.get("synthetic"):
      return
    context = context + [(msg["role"], msg["text"])]
    if msg["role"] == "prompter" and msg["lang"] == lang:
      ranked = [r for r in msg.get("replies", [])
                if r["role"] == "assistant" and not r.get("deleted") and not r.get("synthetic")
                and r.get("rank") is not None]
      for a in ranked:
        for b in ranked:
          if a["rank"] < b["rank"]:
            pairs[(msg["message_id"], a["message_id"], b["message_id"])] = (
                context, a["text"], b["text"])
    for reply in msg.get("replies", []):
      walk(reply, context)

  with open(path) as f:
    for line in f:
      walk(json.loads(line)["prompt"], [])
  return pairs


@pytest.fixture
def data_dir(shared_data, tmp_path, monkeypatch):
  (tmp_path / "oasst").mkdir()
  (tmp_path / "oasst" / "trees.jsonl").symlink_to(shared_data / TREES)
  monkeypatch.setattr(settings, "_explicit", {})
  xlalign_tasks.configure(data_dir=str(tmp_path))
  return tmp_path


def test_pairs_match_the_rule(shared_data, data_dir):
  del data_dir
  expected = reference_pairs(shared_data / TREES, "en")
  examples = oasst_tasks.rm_examples("en", "train") + oasst_tasks.rm_examples("en", "validation")
  got = {}
  for ex in examples:
    prompter, replies = ex["id"].split(":")
    chosen, rejected = replies.split(">")
    got[(prompter, chosen, rejected)] = ex
  assert len(examples) == len(got) == len(expected) > 50
  assert set(got) == set(expected)
  for key, (context, chosen, rejected) in expected.items():
    ex = got[key]
    assert (ex["chosen"], ex["rejected"]) == (chosen, rejected)
    assert ex["inputs"] == format_dialog_input("en", context)
    assert ex["chosen"].strip() and ex["rejected"].strip() and ex["chosen"] != ex["rejected"]


def test_sft_target_is_best_ranked_reply(shared_data, data_dir):
  del data_dir
  pairs = reference_pairs(shared_data / TREES, "en")
  sft = oasst_tasks.sft_examples("en", "train") + oasst_tasks.sft_examples("en", "validation")
  prompts = oasst_tasks.prompt_examples("en", "train") + oasst_tasks.prompt_examples(
      "en", "validation")
  assert [p["id"] for p in prompts] == [s["id"].split(":")[0] for s in sft]
  for ex in sft:
    prompter, best = ex["id"].split(":")
    # The best reply is chosen in every pair it is in and rejected in none.
    assert not any(k[0] == prompter and k[2] == best for k in pairs)
    assert ex["targets"].strip()
  assert {s["id"].split(":")[0] for s in sft} >= {k[0] for k in pairs}


def test_synthetic_trees_dropped_by_default(shared_data):
  path = str(shared_data / TREES)
  threads, counter = oasst.parse_file(path)
  assert counter.dropped["synthetic messages (with their replies)"] > 0
  with_synthetic = oasst.read_file(path, include_synthetic=True)
  assert len(with_synthetic) > len(threads)


def test_split_is_a_stable_hash():
  digest = hashlib.sha1(b"054e1df3-35e0-4bb8-a585-607dbdcd24e0").digest()
  expected = "validation" if int.from_bytes(digest[:8], "big") < 0.05 * 2**64 else "train"
  assert oasst.split_of("054e1df3-35e0-4bb8-a585-607dbdcd24e0") == expected
  share = sum(oasst.split_of(f"tree-{i}") == "validation" for i in range(20_000)) / 20_000
  assert 0.04 < share < 0.06


def test_gzipped_file_reads_the_same(shared_data, tmp_path):
  gz = tmp_path / "trees.jsonl.gz"
  with open(shared_data / TREES, "rb") as src, gzip.open(gz, "wb") as dst:
    shutil.copyfileobj(src, dst)
  assert oasst.read_file(str(gz)) == oasst.read_file(str(shared_data / TREES))


def _corrupt(lines):
  """The real trees plus one broken tree or line per kind of bad input; returns the new lines."""
  first = json.loads(lines[1])  # a non-synthetic tree with ranked replies
  assert not first["prompt"]["synthetic"]
  bad = []
  empty = json.loads(lines[1])
  empty["message_tree_id"] += "-empty"
  empty["prompt"]["replies"][0]["text"] = "  "
  bad.append(empty)
  orphan = json.loads(lines[1])
  orphan["message_tree_id"] += "-orphan"
  orphan["prompt"]["replies"][1]["parent_id"] = "no-such-message"
  bad.append(orphan)
  no_text = json.loads(lines[1])
  no_text["message_tree_id"] += "-no-text"
  del no_text["prompt"]["text"]
  bad.append(no_text)
  no_id = dict(first)
  del no_id["message_tree_id"]
  bad.append(no_id)
  return (lines + ["{not json\n"] + [json.dumps(t) + "\n" for t in bad]
          + [json.dumps({"message_tree_id": "x", "tree_state": "ready_for_export"}) + "\n"])


def test_bad_lines_are_skipped_and_counted(shared_data, tmp_path):
  lines = (shared_data / TREES).read_text().splitlines(keepends=True)
  path = tmp_path / "corrupt.jsonl"
  path.write_text("".join(_corrupt(lines)))
  threads, counter = oasst.parse_file(str(path))
  assert dict(counter.bad) == {
      "line not JSON": 1,
      "missing field prompt": 1,
      "missing field message_tree_id": 1,
      "empty text": 1,
      "missing parent (parent_id names another message)": 1,
      "message missing field text": 1,
  }
  clean = oasst.read_file(str(shared_data / TREES))
  # The two trees with one bad reply keep their other threads; the rest is untouched.
  assert set(clean) <= set(threads)
  extra = [t for t in threads if t.tree_id.endswith(("-empty", "-orphan"))]
  assert extra and all(r.text.strip() for t in extra for r in t.replies)
  assert counter.used == 20 + 3 - 1  # the tree without root text is bad


def test_strict_mode_raises_naming_the_line(shared_data, tmp_path):
  lines = (shared_data / TREES).read_text().splitlines(keepends=True)
  path = tmp_path / "corrupt.jsonl"
  path.write_text("".join(_corrupt(lines)))
  with pytest.raises(UserError, match=r"corrupt.jsonl:line 21: line not JSON"):
    oasst.parse_file(str(path), strict=True)


def test_file_without_usable_trees_is_an_error(tmp_path):
  path = tmp_path / "broken.jsonl"
  path.write_text("nope\n{\"message_id\": \"m\", \"parent_id\": null}\n")
  with pytest.raises(UserError, match=r"broken.jsonl: no usable trees"):
    oasst.parse_file(str(path))


def test_directory_without_files_is_an_error(tmp_path):
  with pytest.raises(UserError, match="no OpenAssistant files"):
    oasst.load(str(tmp_path))
