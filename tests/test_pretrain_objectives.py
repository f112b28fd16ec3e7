"""The two denoising objectives of `xlalign_v1.pretrain.*`: each example can be undone exactly."""
import random
import re

from tiny_world import use_data_dir
from xlalign_tasks import pretrain

TEXT = ("Tromlanbor pín gís píchó. chés rómán lín Tromlanbor pín 970. fó pín chés feñó lín Vovu? "
        "chun llóña lín Tromlanbor pín 887! chun dobénden chacháñán vípáspar.")


def _undo_span_corruption(inputs: str, targets: str) -> str:
  """Puts each sentinel's hidden words back in place: an independent reading of the format."""
  hidden = dict(re.findall(r"(\[\d+\]) ((?:(?!\[\d+\]).)*)", targets + " "))
  return " ".join(hidden.get(w, w).strip() for w in inputs.split())


def test_span_corruption_hides_about_15_percent_and_is_undone_by_its_targets():
  words = (TEXT + " " + TEXT).split()
  out = pretrain.span_corrupt(words, random.Random(3))
  assert _undo_span_corruption(out["inputs"], out["targets"]) == " ".join(words)
  hidden = len(out["targets"].split()) - out["targets"].count("[")
  assert 0.05 <= hidden / len(words) <= 0.3


def test_sentence_permutation_shuffles_sentences_and_targets_the_text_as_written():
  out = pretrain.permute_sentences(TEXT, random.Random(1))
  assert out["targets"] == TEXT
  split = lambda s: re.split(r"(?<=[.?!]) ", s)
  assert sorted(split(out["inputs"])) == sorted(split(TEXT))
  assert out["inputs"] != TEXT  # 5 sentences: this seed moves some
  assert pretrain.permute_sentences(TEXT, random.Random(1)) == out  # fixed by the seed


def test_lines_alternate_objectives_deterministically(tmp_path, monkeypatch):
  (tmp_path / "pretrain").mkdir()
  lines = [f"{TEXT} line {i}." for i in range(6)]
  (tmp_path / "pretrain" / "en.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  use_data_dir(tmp_path, monkeypatch)
  first = pretrain.examples("en", "train")
  assert first == pretrain.examples("en", "train")
  train_lines = [l for i, l in enumerate(lines) if i % pretrain.VALIDATION_EVERY]
  for i, (example, line) in enumerate(zip(first, train_lines)):
    if i % 2:  # sentence permutation: the target is the line itself
      assert example["targets"] == line
    else:  # span corruption: sentinels in both inputs and targets
      assert "[0]" in example["inputs"] and example["targets"].startswith("[0]")
