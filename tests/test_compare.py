"""`xlalign compare`: finished grids side by side, each run's own intervals, no pooling."""
import csv
import json

import pytest

from xlalign_jax import cli, compare

CONFIG = ("ExperimentConfig.rm_lr = {lr}\n"
          "ExperimentConfig.world_sizes = \\\n    (('a', 1),\n     ('b', 2))\n")  # gin's layout


def _row(method, source, target, judge, win, low, high):
  return {"method": method, "source": source, "target": target, "judge": judge, "win_rate": win,
          "ci_low": low, "ci_high": high, "n": 100}


def _accuracy(lang, acc, above):
  return {"source": lang, "target": lang, "accuracy": acc, "ci_low": acc - 0.03,
          "ci_high": acc + 0.03, "majority": 0.6, "length_baseline": 0.62,
          "vs_majority_ci_low": 0.01 if above else -0.01, "vs_length_ci_low": 0.02}


def _gain(source, target, delta, low, high):
  return {"source": source, "target": target, "delta": delta, "ci_low": low, "ci_high": high,
          "n": 100}


def _write_run(path, seed, langs, lr, winrates, accuracy=(), gains=(), extra_config=""):
  path.mkdir(parents=True)
  (path / "results.json").write_text(json.dumps({
      "winrates": winrates, "rm_accuracy": list(accuracy), "bon_oracle_gain": list(gains),
      "provenance": {"seed": seed, "langs": langs,
                     "config": CONFIG.format(lr=lr) + extra_config}}))
  return str(path)


@pytest.fixture
def two_runs(tmp_path):
  a = _write_run(tmp_path / "a", 0, ["en", "es"], 1e-4, [
      _row("bon", "en", "es", "oracle", 0.58, 0.51, 0.65),
      _row("bon", "es", "es", "oracle", 0.45, 0.37, 0.53),
      _row("bon", "en", "es", "rm:es", 0.70, 0.62, 0.77)], [_accuracy("es", 0.7, True)],
      [_gain("en", "es", 0.05, 0.01, 0.09)])
  b = _write_run(tmp_path / "b", 1, ["en", "es"], 3e-4, [
      _row("bon", "en", "es", "oracle", 0.55, 0.47, 0.63),
      _row("bon", "es", "es", "oracle", 0.60, 0.52, 0.68),
      _row("ppo", "en", "es", "oracle", 0.52, 0.50, 0.60)], [_accuracy("es", 0.64, False)],
      [_gain("en", "es", -0.02, -0.07, 0.03)])
  return a, b


def test_cells_line_up_each_run_with_its_own_interval(two_runs, tmp_path, capsys):
  out = tmp_path / "cmp"
  assert cli.main(["compare", *two_runs, "--output", str(out)]) == 0
  assert "3 cells" in capsys.readouterr().out
  result = json.loads((out / "compare.json").read_text())
  labels = ["seed 0, en/es, rm_lr=0.0001", "seed 1, en/es, rm_lr=0.0003"]
  assert result["runs"] == labels
  by_cell = {(r["method"], r["source"], r["target"]): r for r in result["winrates"]}
  assert sorted(by_cell) == [("bon", "en", "es"), ("bon", "es", "es"), ("ppo", "en", "es")]
  # 0.51 is above 50%, 0.47 is not; a lower bound of exactly 0.50 is not above it.
  counts = {cell: (r["runs_above_50"], r["runs_with_cell"]) for cell, r in by_cell.items()}
  assert counts == {("bon", "en", "es"): (1, 2), ("bon", "es", "es"): (1, 2),
                    ("ppo", "en", "es"): (0, 1)}
  assert by_cell["bon", "en", "es"]["runs"][labels[0]]["win_rate"] == 0.58  # not the rm:es row
  markdown = (out / "compare.md").read_text()
  assert ("| Best-of-n | en | es | **58.0 [51.0, 65.0]** | 55.0 [47.0, 63.0] | 1 of 2 |"
          in markdown)
  assert "| PPO | en | es |  | 52.0 [50.0, 60.0] | 0 of 1 |" in markdown
  assert "| es | 70.0 [67.0, 73.0] ✓ | 64.0 [61.0, 67.0] |" in markdown
  assert "| en | es | **+0.050 [+0.010, +0.090]** | -0.020 [-0.070, +0.030] | 1 of 2 |" in markdown
  with open(out / "compare.csv", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 5 and {r["judge"] for r in rows} == {"oracle"}
  assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_another_judge_and_the_target_rm_label(two_runs, tmp_path):
  runs = [compare.load_run(w) for w in two_runs]
  result = compare.compare(["a"], runs[:1], "the target's RM")
  assert [(r["source"], r["runs"]["a"]["judge"]) for r in result["winrates"]] == [("en", "rm:es")]
  assert "†" not in compare.render_markdown(result)  # the en RM chose, the es RM judged
  runs[0]["winrates"].append(_row("bon", "es", "es", "rm:es", 0.9, 0.85, 0.95))
  markdown = compare.render_markdown(compare.compare(["a"], runs[:1], "rm:es"))
  assert "| Best-of-n | es | es | **90.0 [85.0, 95.0] †** | 1 of 1 |" in markdown
  assert "†: judged by the reward model that chose these outputs" in markdown


def test_labels_name_the_directory_where_runs_would_share_one(tmp_path):
  rows = [_row("bon", "en", "es", "oracle", 0.5, 0.4, 0.6)]
  # Settings that change no result (where a run saved, how it was sharded) name no run.
  a = _write_run(tmp_path / "x", 0, ["en", "es"], 1e-4, rows, extra_config=(
      "ExperimentConfig.checkpoint_period = 100\nMeshConfig.model = 1\n"))
  b = _write_run(tmp_path / "y", 0, ["en", "es"], 1e-4, rows, extra_config=(
      "ExperimentConfig.checkpoint_period = 50\nMeshConfig.model = 2\n"))
  assert compare.run_labels([a, b], [compare.load_run(a), compare.load_run(b)]) == [
      "seed 0, en/es (x)", "seed 0, en/es (y)"]
  c = _write_run(tmp_path / "z", 1, ["en", "es"], 3e-4, rows)
  assert compare.run_labels([a, b, c], [compare.load_run(p) for p in (a, b, c)]) == [
      "seed 0, en/es (x)", "seed 0, en/es (y)", "seed 1, en/es, rm_lr=0.0003"]  # most: 0.0001
  assert compare.gin_settings(CONFIG.format(lr=1)) == {
      "ExperimentConfig.rm_lr": "1", "ExperimentConfig.world_sizes": "(('a', 1), ('b', 2))"}


def test_bad_input_is_one_line(two_runs, tmp_path, capsys):
  def error(*argv):
    assert cli.main(["compare", *argv, "--output", str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    return lines[0]
  assert "results.json not found: run the grid in" in error(str(tmp_path / "none"))
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "results.json").write_text("{not json")
  assert "results.json is not JSON" in error(str(tmp_path / "bad"))
  assert ("no win rates under judge 'sim_llm' in run seed 0, en/es, rm_lr=0.0001; its results "
          "have judges oracle, rm:es") in error(*two_runs, "--judge", "sim_llm")
  (tmp_path / "o").write_text("")
  assert "is a file; compare writes a directory" in error(*two_runs)
