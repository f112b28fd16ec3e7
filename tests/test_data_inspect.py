"""`xlalign inspect` writes a task's examples as JSON lines of their text fields.

Data: the tiny world of `tiny_world.py` (real formats, shared test sentencepiece model).
"""
import json

import pytest

from tiny_world import data_dir, world  # noqa: F401  (fixtures)
from xlalign_jax import cli


def _inspect(tmp_path, *flags):
  out = tmp_path / "out.jsonl"
  rc = cli.main(["inspect", *flags, "--output", str(out)])
  lines = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []
  return rc, lines


@pytest.mark.parametrize("task,keys", [
    ("xlalign_v1.seahorse.en.sft", {"inputs", "targets"}),
    ("xlalign_v1.seahorse.en.rm", {"inputs", "targets", "label"}),
    ("xlalign_v1.oasst.es.rm", {"inputs", "chosen", "rejected"}),
    ("xlalign_v1.oasst.es.prompts", {"inputs"}),
])
def test_inspect_writes_text_fields(task, keys, data_dir, tmp_path):
  rc, lines = _inspect(tmp_path, task, "--data_dir", str(data_dir), "--split", "train")
  assert rc == 0 and lines
  for line in lines:
    assert set(line) == keys | {"lang", "id", "group"}
    assert all(isinstance(line[k], str) and line[k] for k in keys - {"label"})


def test_inspect_seahorse_rm_labels_and_instruction(data_dir, tmp_path):
  rc, lines = _inspect(tmp_path, "xlalign_v1.seahorse.de.rm", "--data_dir", str(data_dir),
                       "--split", "validation")
  assert rc == 0
  # 3 articles x (Yes, No); Unsure has no label.
  assert sorted(l["label"] for l in lines) == [0.0] * 3 + [1.0] * 3
  prefix = "Summarize the following text in German: article"
  assert all(l["inputs"].startswith(prefix) for l in lines)
  assert {l["targets"] for l in lines} == {"summary Yes", "summary No"}


def test_inspect_oasst_splits_and_pairs(data_dir, tmp_path):
  rc, lines = _inspect(tmp_path, "xlalign_v1.oasst.ru.rm", "--data_dir", str(data_dir),
                       "--split", "train,validation", "--lengths", "inputs=8,chosen=16,rejected=16")
  assert rc == 0
  # 4 trees x (3 pairs at the root + 1 after the follow-up).
  assert len(lines) == 16
  assert {(l["chosen"], l["rejected"]) for l in lines} == {
      ("best answer", "middle answer"), ("best answer", "worst answer"),
      ("middle answer", "worst answer"), ("then good", "then bad")}
  follow_up = [l for l in lines if l["chosen"] == "then good"][0]["inputs"]
  assert "Human: hello ru" in follow_up and "Assistant: best answer" in follow_up


def test_inspect_mixture_and_limit(data_dir, tmp_path):
  rc, lines = _inspect(tmp_path, "xlalign_v1.seahorse.en_es.rm", "--data_dir", str(data_dir),
                       "--limit", "2")
  assert rc == 0
  assert sorted(l["lang"] for l in lines) == ["en", "en", "es", "es"]


def test_inspect_unknown_task_lists_close_names(data_dir, tmp_path, capsys):
  rc, _ = _inspect(tmp_path, "xlalign_v1.seahorse.en.rn", "--data_dir", str(data_dir))
  err = capsys.readouterr().err
  assert rc == 2 and "xlalign_v1.seahorse.en.rm" in err and "Traceback" not in err


def test_inspect_unknown_split(data_dir, tmp_path, capsys):
  rc, _ = _inspect(tmp_path, "xlalign_v1.oasst.en.sft", "--data_dir", str(data_dir),
                   "--split", "test")
  assert rc == 2 and "no split 'test'" in capsys.readouterr().err


def test_missing_data_dir_is_a_user_error(data_dir, tmp_path, capsys):
  rc, _ = _inspect(tmp_path, "xlalign_v1.oasst.en.sft", "--data_dir", str(tmp_path / "nope"))
  assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_bad_lengths_fail_before_anything_is_written(data_dir, tmp_path, capsys):
  rc, lines = _inspect(tmp_path, "xlalign_v1.oasst.en.sft", "--data_dir", str(data_dir),
                       "--lengths", "inputs=8,targets")
  assert rc == 2 and "expected name=int pairs" in capsys.readouterr().err
  assert lines == []
