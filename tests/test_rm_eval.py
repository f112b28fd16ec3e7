"""`xlalign rm-eval`: accuracy, baselines, paired differences and ROC AUC against references."""
import csv
import json

import numpy as np
import pytest

from tiny_world import use_data_dir, world  # pylint: disable=unused-import
from xlalign_jax import errors, rm_eval, stats


def brute_force_auc(scores, labels):
  """P(positive > negative) + P(tie) / 2 over every (positive, negative) pair."""
  pos, neg = scores[labels], scores[~labels]
  diff = pos[:, None] - neg[None, :]
  return np.mean((diff > 0) + 0.5 * (diff == 0))


def test_roc_auc_matches_pairwise_count_with_ties_and_along_an_axis():
  rng = np.random.default_rng(0)
  scores = np.round(rng.normal(size=(5, 60)), 1)  # rounding makes ties
  labels = rng.random((5, 60)) < 0.4
  got = stats.roc_auc(scores, labels, axis=1)
  want = [brute_force_auc(s, l) for s, l in zip(scores, labels)]
  np.testing.assert_allclose(got, want, rtol=1e-12)
  assert stats.roc_auc(-scores[0], labels[0]) == pytest.approx(1 - want[0])
  assert np.isnan(stats.roc_auc([0.1, 0.2], [True, True]))  # one class: undefined


def test_auc_ci_brackets_the_point_and_needs_both_classes():
  rng = np.random.default_rng(1)
  labels = rng.random(300) < 0.5
  scores = labels + rng.normal(size=300)
  auc, low, high = stats.auc_ci(scores, labels)
  assert low < auc < high and 0.7 < auc < 0.85  # two unit normals one apart: Phi(1/sqrt 2) = .76
  noisier = labels + rng.normal(0, 3, 300)
  diff, low, high = stats.auc_ci(scores, labels, baseline_scores=noisier)
  assert diff == pytest.approx(auc - stats.roc_auc(noisier, labels))
  assert 0 < low < diff < high  # the paired interval sees the less noisy scorer win
  assert stats.auc_ci(scores, labels, baseline_scores=scores)[1:] == (0.0, 0.0)
  with pytest.raises(ValueError, match="both classes"):
    stats.auc_ci(scores, np.ones(300, bool))


def test_length_threshold_recovers_direction_and_cut():
  lengths = np.arange(1, 41, dtype=np.float64)
  direction, cut = rm_eval.fit_length_threshold(lengths, lengths > 25)
  assert direction == 1 and 25 <= cut < 26
  direction, cut = rm_eval.fit_length_threshold(lengths, lengths <= 12)
  assert direction == -1 and 12 <= cut < 13


class TableScorer:
  """A reward model stand-in: the reward of an output is looked up in a table."""

  def __init__(self, rewards):
    self.rewards = rewards

  def score_texts(self, vocab, inputs, outputs):
    del vocab, inputs
    return np.array([self.rewards[o] for o in outputs], np.float64)


def _pointwise_split(n=400, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.random(n) < 0.6
  # The length baseline is right 70% of the time, independently of the RM.
  length_right = rng.random(n) < 0.7
  length_score = np.where(length_right == labels, 1.0, -1.0) * rng.uniform(1, 5, n)
  baselines = {"majority": labels.astype(np.float64),
               "length_baseline": ((length_score > 0) == labels).astype(np.float64)}
  outputs = [f"summary {i}" for i in range(n)]
  return rm_eval.TaskSplit("t", "es", "validation", ["x"] * n, {"targets": outputs}, labels,
                           baselines, length_score), outputs, labels, length_score


def test_pointwise_accuracy_paired_differences_and_auc():
  data, outputs, labels, length_score = _pointwise_split()
  rng = np.random.default_rng(2)
  rewards = np.where(labels, 1.0, -1.0) + rng.normal(0, 0.8, len(labels))  # ~89% right
  e = rm_eval.evaluate_task(TableScorer(dict(zip(outputs, rewards))), None, data)
  correct = (rewards > 0) == labels
  assert e["n"] == len(labels) and e["accuracy"] == pytest.approx(correct.mean())
  assert e["majority"] == pytest.approx(labels.mean())
  assert e["length_baseline"] == pytest.approx(data.baselines["length_baseline"].mean())
  assert e["vs_length"] == pytest.approx(correct.mean() - e["length_baseline"])
  assert 0 < e["vs_length_ci_low"] < e["vs_length"] < e["vs_length_ci_high"]  # RM beats length
  assert 0 < e["vs_majority_ci_low"]
  assert e["auc"] == pytest.approx(brute_force_auc(rewards, labels))
  assert e["auc_ci_low"] < e["auc"] < e["auc_ci_high"]
  assert e["length_auc"] == pytest.approx(brute_force_auc(length_score, labels))
  assert e["auc_vs_length"] == pytest.approx(e["auc"] - e["length_auc"])
  assert 0 < e["auc_vs_length_ci_low"]


def test_an_rm_that_is_the_length_baseline_does_not_beat_it():
  data, outputs, labels, length_score = _pointwise_split(seed=3)
  e = rm_eval.evaluate_task(TableScorer(dict(zip(outputs, length_score))), None, data)
  assert e["accuracy"] == pytest.approx(e["length_baseline"])
  assert e["vs_length"] == e["vs_length_ci_low"] == e["vs_length_ci_high"] == 0.0
  assert e["auc"] == pytest.approx(e["length_auc"])
  assert e["auc_vs_length_ci_low"] == e["auc_vs_length_ci_high"] == 0.0


def test_pairwise_accuracy_counts_ties_for_the_length_baseline_as_half():
  chosen, rejected = ["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"]
  rewards = {"a1": 2.0, "b1": 1.0, "a2": 0.0, "b2": 1.0, "a3": 3.0, "b3": -1.0, "a4": 1.0,
             "b4": 1.0}
  baseline = np.array([1.0, 0.0, 0.5, 1.0])
  data = rm_eval.TaskSplit("p", "en", "validation", ["x"] * 4,
                           {"chosen": chosen, "rejected": rejected}, None,
                           {"length_baseline": baseline}, None)
  e = rm_eval.evaluate_task(TableScorer(rewards), None, data)
  assert e["accuracy"] == pytest.approx(0.5)  # a1 > b1, a3 > b3; a2 < b2; a4 = b4 is wrong
  assert e["length_baseline"] == pytest.approx(0.625)
  assert e["majority"] is None and "auc" not in e


def test_rm_eval_command_on_seahorse_files(world, small_rm_checkpoint, monkeypatch, tmp_path):
  """End to end through the real task and Scorer: the reported numbers equal ones recomputed from
  the TSV's labels and the same checkpoint's rewards."""
  import xlalign_tasks
  from xlalign_jax import cli
  from xlalign_jax.score import Scorer
  use_data_dir(world, monkeypatch)
  out = tmp_path / "acc.json"
  assert cli.main(["rm-eval", "--checkpoint", f"en={small_rm_checkpoint}", "--task",
                   "xlalign_v1.seahorse.en.rm", "--data_dir", str(world), "--output",
                   str(out)]) == 0
  (entry,) = json.loads(out.read_text())["rm_accuracy"]
  with open(world / "seahorse" / "validation.tsv", newline="") as f:
    rows = [r for r in csv.DictReader(f, dialect="excel-tab")
            if r["worker_lang"] == "en-US" and r["question6"] in ("Yes", "No")]
  labels = np.array([r["question6"] == "Yes" for r in rows])
  data = rm_eval.load_task_split(xlalign_tasks.VOCABULARY, "xlalign_v1.seahorse.en.rm",
                                 "validation")
  assert sorted(data.outputs["targets"]) == sorted(r["summary"] for r in rows)
  rewards = Scorer(str(small_rm_checkpoint), reward=True).score_texts(
      xlalign_tasks.VOCABULARY, data.inputs, data.outputs["targets"])
  assert entry["n"] == len(rows) == len(data.labels)
  assert entry["accuracy"] == pytest.approx(np.mean((rewards > 0) == data.labels))
  assert sorted(data.labels) == sorted(labels)
  assert entry["auc"] == pytest.approx(brute_force_auc(rewards, data.labels))
  # Rated summaries of one article share it: the intervals resample whole articles.
  gem_ids = [r["gem_id"] for r in rows]
  assert sorted(data.groups) == sorted(gem_ids)
  assert entry["groups"] == len(set(gem_ids)) < entry["n"]
  correct = ((rewards > 0) == data.labels).astype(np.float64)
  assert [entry["ci_low"], entry["ci_high"]] == pytest.approx(
      stats.bootstrap_ci(correct, groups=data.groups)[1:])
  assert [entry["vs_length_ci_low"], entry["vs_length_ci_high"]] == pytest.approx(
      stats.paired_bootstrap_ci(correct, data.baselines["length_baseline"],
                                groups=data.groups)[1:])
  with open(out.with_suffix(".csv"), newline="") as f:
    (row,) = csv.DictReader(f)
  assert float(row["vs_length"]) == pytest.approx(entry["vs_length"])
  assert int(row["groups"]) == entry["groups"]
  # What produced the file, next to it.
  record = json.loads((tmp_path / "acc.json.config.json").read_text())
  assert record["command"].startswith(f"xlalign rm-eval --checkpoint en={small_rm_checkpoint} ")
  assert record["flags"]["task"] == ["xlalign_v1.seahorse.en.rm"]
  assert record["flags"]["data_dir"] == str(world) and record["versions"]["jax"]


def test_the_language_of_an_rm_comes_from_its_run(tmp_path):
  assert rm_eval.source_language("es=/some/where") == ("es", "/some/where")
  run = tmp_path / "train_run"  # `xlalign train`: the task is in the run's config.gin
  (run / "checkpoints" / "100").mkdir(parents=True)
  (run / "config.gin").write_text("MIXTURE_OR_TASK_NAME = 'xlalign_v1.seahorse.ru.rm'\n")
  assert rm_eval.source_language(str(run / "checkpoints" / "100")) == (
      "ru", str(run / "checkpoints" / "100"))
  stage = tmp_path / "stages" / "rm_vi"  # `xlalign run`: the stage's loop_config.json names it
  (stage / "model").mkdir(parents=True)
  (stage / "model" / "config.gin").write_text("LoopConfig.train_steps = 250\n")
  (stage / "loop_config.json").write_text(
      json.dumps({"mixture_or_task_name": "xlalign_v1.oasst.vi.rm"}))
  assert rm_eval.source_language(str(stage / "model")) == ("vi", str(stage / "model"))
  with pytest.raises(errors.UserError, match="write it as LANG="):
    rm_eval.source_language(str(tmp_path))


def test_rm_eval_of_a_task_without_rm_features_is_a_one_line_error(world, small_rm_checkpoint,
                                                                    monkeypatch, tmp_path, capsys):
  from xlalign_jax import cli
  use_data_dir(world, monkeypatch)
  assert cli.main(["rm-eval", "--checkpoint", f"en={small_rm_checkpoint}", "--task",
                   "xlalign_v1.seahorse.en.prompts", "--data_dir", str(world), "--output",
                   str(tmp_path / "acc.json")]) != 0
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1] == ("xlalign rm-eval: error: xlalign_v1.seahorse.en.prompts is not a reward-model"
                     " task (needs inputs+targets+label or inputs+chosen+rejected features)")
  assert not (tmp_path / "acc.json").exists()


def test_two_rms_of_one_source_language_are_refused(tmp_path):
  """The matrix has one cell per (source, target): a second RM labelled en would overwrite one."""
  with pytest.raises(errors.UserError, match=r"more than one RM for source language en: /a, /b"):
    rm_eval.evaluate(["en=/a", "es=/c", "en=/b"], ["xlalign_v1.seahorse.es.rm"], vocab=None)
