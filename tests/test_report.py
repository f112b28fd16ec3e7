"""report.py on a 3x3 grid: CSV round trip, markdown tables, PNG plots, validation."""
import csv
import math
import re

import numpy as np
import pytest
from matplotlib import image as mpl_image

from xlalign_jax import report, winrate
from xlalign_jax.errors import UserError

LANGS = ("en", "es", "ru")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _win(method, source, target, judge, rate, n=300, half=0.05):
  return {"method": method, "source": source, "target": target, "judge": judge, "win_rate": rate,
          "ci_low": rate - half, "ci_high": rate + half, "n": n, "dropped": 0}


def _ppo_run(source, target, reward_end, steps=40):
  """A "ppo_training" row (run_history.ppo_summary's fields) whose reward rises linearly from 0
  to `reward_end`, KL from 0 to 2, length from 20 to 10 tokens, entropy constant 0.4."""
  step = np.arange(1, steps + 1)
  curves = {"step": step.tolist(), "reward": np.linspace(0, reward_end, steps).tolist(),
            "kl": np.linspace(0, 2, steps).tolist(),
            "response_length": np.linspace(20, 10, steps).tolist(), "entropy": [0.4] * steps}
  row = {"source": source, "target": target, "steps": steps, "curves": curves}
  for metric in ("reward", "kl", "response_length", "entropy"):
    row[f"{metric}_first"] = float(np.mean(curves[metric][:10]))
    row[f"{metric}_last"] = float(np.mean(curves[metric][-10:]))
  return row


def grid_results(synthetic=True):
  rng = np.random.default_rng(0)
  winrates = [_win("bon", s, t, j, float(rng.uniform(0.45, 0.75)))
              for j in ("oracle", "rm:es") for s in LANGS for t in LANGS]
  winrates += [_win("ppo", "en", "es", "oracle", 0.61), _win("ppo", "es", "es", "oracle", 0.58)]
  accuracy = [{"source": s, "target": t, "accuracy": 0.6 + 0.05 * i, "ci_low": 0.55 + 0.05 * i,
               "ci_high": 0.65 + 0.05 * i, "majority": 0.5, "length_baseline": 0.52}
              for i, (s, t) in enumerate((s, t) for s in LANGS for t in LANGS)]
  for i, row in enumerate(accuracy):  # rm_eval's paired intervals and AUC
    row.update(vs_majority_ci_low=0.01 * (i - 1), vs_length_ci_low=0.01 * (i - 2),
               auc=0.55 + 0.01 * i, auc_ci_low=0.5 + 0.01 * i, auc_ci_high=0.6 + 0.01 * i,
               length_auc=0.53, auc_vs_length_ci_low=0.01 * (i - 4))
  return {
      "winrates": winrates,
      "rm_accuracy": accuracy,
      # References for two targets under one judge, one target under the other.
      "references": [{"reference": ref, "target": t, "judge": j, "win_rate": rate,
                      "ci_low": rate - 0.08, "ci_high": rate + 0.08, "n": 200}
                     for ref, t, j, rate in (("sft_greedy", "en", "oracle", 0.6),
                                             ("sft_greedy", "es", "oracle", 0.655),
                                             ("sft_greedy", "es", "rm:es", 0.7),
                                             ("sft_likeliest", "es", "oracle", 0.58))],
      "rm_score_delta": [{"method": "bon", "source": s, "target": "es", "judge": "rm:es",
                          "delta": 0.1 * k, "ci_low": 0.1 * k - 0.02, "ci_high": 0.1 * k + 0.02,
                          "n": 300} for k, s in enumerate(LANGS)],
      "bon_oracle_gain": [{"source": s, "target": t, "delta": 0.01 * (i - 4),
                           "ci_low": 0.01 * (i - 4) - 0.05, "ci_high": 0.01 * (i - 4) + 0.05,
                           "n": 100, "ceiling": 0.4 + 0.01 * LANGS.index(t),
                           "ceiling_ci_low": 0.35, "ceiling_ci_high": 0.45,
                           "likeliest": 0.2 + 0.01 * LANGS.index(t),
                           "likeliest_ci_low": 0.15, "likeliest_ci_high": 0.25,
                           "rank_corr": 0.02 * i, "rank_corr_ci_low": 0.02 * i - 0.1,
                           "rank_corr_ci_high": 0.02 * i + 0.1, "rank_corr_n": 98}
                          for i, (s, t) in enumerate((s, t) for s in LANGS for t in LANGS)],
      "bon_pick_profile": [{"source": s, "target": "es", "n": 100, "sentences_pick": 2.7 - 0.1 * k,
                            "sentences_all": 2.25, "correct_pick": 1.5, "correct_all": 1.38,
                            "wrong_pick": 0.97, "wrong_all": 0.71, "repeats_pick": 0.2,
                            "repeats_all": 0.15} for k, s in enumerate(LANGS)],
      "judge_agreement": [{"judge_a": "oracle", "judge_b": "rm:es", "method": "bon",
                           "agreement": 0.8, "ci_low": 0.75, "ci_high": 0.85, "n": 2700,
                           "kendall_tau": 0.667, "n_systems": 9}],
      "ppo_training": [_ppo_run("en", "es", reward_end=3.0),
                       _ppo_run("es", "es", reward_end=1.0)],
      "provenance": {"synthetic": synthetic, "seeds": {"world": 0, "train": 1},
                     "config": "include 'demo.gin'\nSEED = 1\n",
                     "versions": {"jax": "0.10.2", "xlalign_jax": "0.1.0"}},
  }


def md_table(text: str, heading: str, nth: int = 0):
  """(header, body rows) of the nth table after `heading`, cells stripped."""
  lines = text.split(heading + "\n", 1)[1].splitlines()
  tables, current = [], []
  for line in lines:
    if line.startswith("|"):
      current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))])  # not "\|"
    elif current:
      tables.append(current)
      current = []
    if line.startswith("## ") or len(tables) > nth:
      break
  table = tables[nth]
  return table[0], table[2:]  # table[1] is the |---| rule


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  out = tmp_path_factory.mktemp("report")
  results = grid_results()
  return results, report.write_report(results, str(out)), out


def test_writes_all_files(written):
  _, paths, out = written
  assert paths["csv"] == str(out / "results.csv") and paths["markdown"] == str(out / "report.md")
  names = sorted(p.name for p in (out / "plots").iterdir())
  assert names == sorted([f"{g}_{kind}.png" for g in ("bon_oracle", "bon_rm-es", "ppo_oracle")
                          for kind in ("heatmap", "bars")] + ["ppo_training.png"])
  assert sorted(paths["plots"]) == sorted(str(out / "plots" / n) for n in names)


def test_csv_parses_back_to_the_same_numbers(written):
  results, paths, _ = written
  with open(paths["csv"], newline="") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0])[:8] == list(report.WINRATE_KEYS) and "dropped" in rows[0]
  assert len(rows) == len(results["winrates"]) == 20
  for row, want in zip(rows, results["winrates"]):
    assert {k: row[k] for k in ("method", "source", "target", "judge")} == {
        k: want[k] for k in ("method", "source", "target", "judge")}
    for key in ("win_rate", "ci_low", "ci_high"):
      assert float(row[key]) == want[key]  # exact: str(float) round-trips
    assert int(row["n"]) == want["n"]


def _cell(row):
  return f"{100 * row['win_rate']:.1f} [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"


def test_markdown_win_rate_tables_are_source_rows_by_target_columns(written):
  results, paths, _ = written
  text = open(paths["markdown"]).read()
  for judge in ("oracle", "rm:es"):
    header, body = md_table(text, f"### Best-of-n, judge: {judge}")
    assert header == ["source \\ target", "en", "es", "ru"]
    assert [r[0] for r in body] == ["en", "es", "ru"]
    rows = [r for r in results["winrates"] if r["method"] == "bon" and r["judge"] == judge]
    for t_index, target in enumerate(LANGS):
      column = [r for r in rows if r["target"] == target]
      best = max(column, key=lambda r: r["win_rate"])["source"]
      for row in column:
        cell = body[LANGS.index(row["source"])][1 + t_index]
        # Outputs judged by the RM that chose them are marked.
        want = _cell(row) + (" †" if judge == f"rm:{row['source']}" else "")
        assert cell == (f"**{want}**" if row["source"] == best else want)
    section = text.split(f"### Best-of-n, judge: {judge}", 1)[1].split("###", 1)[0]
    assert (report.SELF_JUDGED_NOTE in section) == (judge == "rm:es")
  header, body = md_table(text, "### PPO, judge: oracle")  # only the pairs that were run
  assert header == ["source \\ target", "es"] and [r[0] for r in body] == ["en", "es"]
  assert "![Best-of-n oracle](plots/bon_oracle_heatmap.png)" in text


def test_markdown_ranking_per_target(written):
  results, paths, _ = written
  text = open(paths["markdown"]).read()
  ranking = text.split("## Source-language ranking per target", 1)[1]
  header, body = md_table(ranking, "### Best-of-n, judge: oracle")
  assert header == ["rank", "en", "es", "ru"] and [r[0] for r in body] == ["1", "2", "3"]
  for t_index, target in enumerate(LANGS):
    rows = sorted((r for r in results["winrates"] if r["method"] == "bon"
                   and r["judge"] == "oracle" and r["target"] == target),
                  key=lambda r: -r["win_rate"])
    assert [b[1 + t_index] for b in body] == [f"{r['source']} {_cell(r)}" for r in rows]


def test_markdown_rm_accuracy_delta_agreement_and_provenance(written):
  _, paths, _ = written
  text = open(paths["markdown"]).read()
  header, body = md_table(text, "## Reward-model accuracy")
  assert header == ["source \\ target", "en", "es", "ru"]
  # ✓ where both paired intervals are above 0 (from the fourth row on).
  assert body[0][1] == "60.0 [55.0, 65.0]" and body[2][3] == "**100.0 [95.0, 105.0] ✓**"
  assert body[0][3] == "70.0 [65.0, 75.0]" and body[1][1] == "75.0 [70.0, 80.0] ✓"
  assert body[3] == ["*majority baseline*", "50.0", "50.0", "50.0"]
  assert body[4] == ["*length baseline*", "52.0", "52.0", "52.0"]
  header, body = md_table(text, "### Ranking: ROC AUC")
  assert header == ["source \\ target", "en", "es", "ru"]
  assert body[1][2] == "59.0 [54.0, 64.0]" and body[1][3] == "60.0 [55.0, 65.0] ✓"
  assert body[3] == ["*length rule*", "53.0", "53.0", "53.0"]
  header, body = md_table(text, "### Best-of-n, evaluator: the target's RM")
  assert header == ["source \\ target", "es"] and body[1] == ["es", "+0.100 [+0.080, +0.120] †"]
  assert body[0][1].endswith("]")  # the en RM's choices, judged by the es RM: not marked
  header, body = md_table(text, "## Best-of-n oracle gain over a random candidate")
  assert header == ["source \\ target", "en", "es", "ru"]
  assert body[0] == ["en", "-0.040 [-0.090, +0.010]", "-0.030 [-0.080, +0.020]",
                     "-0.020 [-0.070, +0.030]"]
  assert body[2][3] == "**+0.040 [-0.010, +0.090]**"
  assert ("what a perfect RM would gain): en +0.400 [+0.350, +0.450], es +0.410 [+0.350, +0.450], "
          "ru +0.420 [+0.350, +0.450].") in text
  assert ("finds likeliest (its log-probability of the sample) gains: en +0.200 [+0.150, +0.250], "
          "es +0.210 [+0.150, +0.250], ru +0.220 [+0.150, +0.250].") in text
  header, body = md_table(text, "### Within-prompt rank correlation of reward and oracle quality")
  assert header == ["source \\ target", "en", "es", "ru"]
  assert body[0][1] == "+0.000 [-0.100, +0.100]" and body[2][3] == "**+0.160 [+0.060, +0.260]**"
  header, body = md_table(text, "## What best-of-n picks")
  assert header == ["RM → policy", "sentences", "correct facts", "wrong facts", "repeated facts"]
  assert body[1] == ["es → es", "2.60 vs 2.25", "1.50 vs 1.38", "0.97 vs 0.71", "0.20 vs 0.15"]
  header, body = md_table(text, "## For scale: without a reward model")
  assert header == ["output", "judge", "en", "es"]
  assert body == [["the SFT policy's greedy output", "oracle", "60.0 [52.0, 68.0]",
                   "65.5 [57.5, 73.5]"],
                  ["the SFT policy's greedy output", "the target's RM", "–", "70.0 [62.0, 78.0]"],
                  ["the likeliest of its best-of-n samples", "oracle", "–", "58.0 [50.0, 66.0]"]]
  header, body = md_table(text, "## Judge agreement")
  assert header[:4] == ["judge A", "judge B", "method", "instance agreement % [95% CI]"]
  assert body == [["oracle", "rm:es", "bon", "80.0 [75.0, 85.0]", "2700", "0.667", "9"]]
  assert "**The languages are synthetic stand-ins**" in text
  assert "```\ninclude 'demo.gin'\nSEED = 1\n```" in text and "  - jax: 0.10.2" in text


def test_real_languages_get_no_synthetic_note_and_missing_values_show_na(tmp_path):
  results = grid_results(synthetic=False)
  results["winrates"][0].update(win_rate=math.nan, ci_low=math.nan, ci_high=math.nan, n=0)
  text = report.render_markdown(results)
  assert "synthetic stand-ins" not in text
  _, body = md_table(text, "### Best-of-n, judge: oracle")
  assert body[0][1] == "n/a"


def test_plots_are_real_pngs(written):
  _, paths, _ = written
  for path in paths["plots"]:
    with open(path, "rb") as f:
      data = f.read()
    assert data.startswith(PNG_MAGIC) and len(data) > 15_000, (path, len(data))
    height, width, _ = mpl_image.imread(path).shape
    assert height > 250 and width > 250


def test_bars_draw_each_reference_of_the_judge_in_its_target_panel():
  from xlalign_jax import report_plots
  results = grid_results()
  oracle = [r for r in results["winrates"] if r["method"] == "bon" and r["judge"] == "oracle"]
  references = [r for r in results["references"] if r["judge"] == "oracle"]
  fig = report_plots.bars_figure(oracle, "title", references)
  panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
  assert set(panels) == {"target: en", "target: es", "target: ru"}

  def dotted(ax):  # (label, height) of the dotted reference lines; the 50% line is dashed
    return sorted((line.get_label(), line.get_ydata()[0]) for line in ax.get_lines()
                  if line.get_linestyle() == ":")

  assert dotted(panels["target: en"]) == [("the SFT policy's greedy output", pytest.approx(60.0))]
  assert dotted(panels["target: es"]) == [
      ("the SFT policy's greedy output", pytest.approx(65.5)),
      ("the likeliest of its best-of-n samples", pytest.approx(58.0))]
  assert dotted(panels["target: ru"]) == []
  (legend,) = fig.legends  # one, below the panels
  assert [t.get_text() for t in legend.get_texts()] == [
      "the SFT policy's greedy output", "the likeliest of its best-of-n samples"]


def test_a_reference_has_one_colour_in_every_panel_also_where_the_other_is_missing():
  from xlalign_jax import report_plots
  results = grid_results()
  oracle = [r for r in results["winrates"] if r["method"] == "bon" and r["judge"] == "oracle"]
  references = [r for r in results["references"] if r["judge"] == "oracle"]
  references.append(dict(references[-1], target="ru"))  # ru: the likeliest alone
  fig = report_plots.bars_figure(oracle, "title", references)
  colours = {(line.get_label(), line.get_color()) for ax in fig.axes for line in ax.get_lines()
             if line.get_linestyle() == ":"}
  assert len(colours) == len({label for label, _ in colours}) == 2


def test_ppo_training_section_sits_each_run_beside_its_win_rates(written):
  results, paths, _ = written
  header, body = md_table(open(paths["markdown"]).read(), "## PPO training")
  assert header == ["RM → policy", "steps", "RM reward", "KL to the SFT policy (nats)",
                    "response length (tokens)", "entropy (nats/token)", "win rate, oracle"]
  # Means of the first and last 10 of 40 steps of the linear curves of _ppo_run.
  assert body == [
      ["en → es", "40", "0.35 → 2.65", "0.23 → 1.77", "18.85 → 11.15", "0.40 → 0.40",
       "61.0 [56.0, 66.0]"],
      ["es → es", "40", "0.12 → 0.88", "0.23 → 1.77", "18.85 → 11.15", "0.40 → 0.40",
       "58.0 [53.0, 63.0]"]]
  assert "![PPO training curves](plots/ppo_training.png)" in open(paths["markdown"]).read()


def test_rm_judges_of_their_own_language_make_one_grid(tmp_path, monkeypatch):
  """As `xlalign run` judges (rm:<target> for each target): one source x target table and one
  pair of plots for "the target's RM", each target's panel with its own RM's references."""
  from xlalign_jax import report_plots
  rng = np.random.default_rng(1)
  results = {"winrates": [_win("bon", s, t, f"rm:{t}", float(rng.uniform(0.45, 0.75)))
                          for s in LANGS for t in LANGS],
             "references": [{"reference": "sft_greedy", "target": t, "judge": f"rm:{t}",
                             "win_rate": 0.5 + 0.1 * k, "ci_low": 0.4, "ci_high": 0.9, "n": 100}
                            for k, t in enumerate(LANGS)]}
  drawn = []  # the references each bar chart is given
  real_bars = report_plots.bars
  monkeypatch.setattr(report_plots, "bars", lambda rows, title, path, refs=(): drawn.append(
      refs) or real_bars(rows, title, path, refs))
  paths = report.write_report(results, str(tmp_path))
  text = open(paths["markdown"]).read()
  header, body = md_table(text, "### Best-of-n, judge: the target's RM")
  assert header == ["source \\ target", "en", "es", "ru"] and len(body) == 3
  cell = {(r["source"], r["target"]): r for r in results["winrates"]}
  assert body[1][1].strip("*") == report.pct_ci(cell[("es", "en")], "win_rate")
  assert body[0][1].strip("*") == report.pct_ci(cell[("en", "en")], "win_rate") + " †"
  assert sum(c.strip("*").endswith(" †") for row in body for c in row[1:]) == 3  # the diagonal
  assert "judge: rm:" not in text
  assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
      "bon_target-rm_bars.png", "bon_target-rm_heatmap.png"]
  (refs,) = drawn
  assert sorted((r["target"], r["judge"]) for r in refs) == [(t, f"rm:{t}") for t in LANGS]


def test_ppo_training_marks_the_win_rate_of_the_rm_that_ppo_maximised():
  results = grid_results()
  results["winrates"] += [dict(r, judge="rm:es") for r in results["winrates"]
                          if r["method"] == "ppo" and r["judge"] == "oracle"]
  text = report.render_markdown(results)
  header, body = md_table(text, "## PPO training")
  assert header[-1] == "win rate, the target's RM"
  assert [row[-1].endswith(" †") for row in body] == [False, True]  # en -> es, es -> es
  assert report.SELF_JUDGED_NOTE in text.split("## PPO training", 1)[1].split("##", 1)[0]


def test_ppo_training_section_counts_steps_above_the_kl_bound():
  results = grid_results()
  results["ppo_training"][0].update(max_kl=5.0, steps_above_max_kl=12)
  header, body = md_table(report.render_markdown(results), "## PPO training")
  assert header[6:8] == ["steps with KL > 5", "win rate, oracle"]
  assert [row[6] for row in body] == ["12", "–"]


def test_ppo_training_names_the_runs_whose_reward_rose_as_their_win_rate_fell_below_half():
  results = grid_results()
  results["ppo_training"][0]["kl_max"] = 12.25
  for row in results["winrates"]:
    if (row["method"], row["source"], row["target"]) == ("ppo", "es", "es"):
      row.update(win_rate=0.04, ci_low=0.01, ci_high=0.08)
  text = report.render_markdown(results)
  header, body = md_table(text, "## PPO training")
  assert header[6:8] == ["largest KL", "win rate, oracle"]
  assert [row[6] for row in body] == ["12.25", "–"]
  assert "the judges do not. Here (oracle): es → es.\n" in text
  # A run whose reward fell is not named, however it is judged.
  results["ppo_training"][1].update(reward_first=1.0, reward_last=0.5)
  assert " Here (" not in report.render_markdown(results)


def test_ppo_training_shows_the_kl_coefficient_of_runs_that_adapted_it():
  from xlalign_jax import report_plots
  results = grid_results()
  adaptive, fixed = results["ppo_training"]
  steps = adaptive["curves"]["step"]
  adaptive["curves"]["kl_beta"] = np.linspace(0.1, 0.7, len(steps)).tolist()
  adaptive.update(kl_beta_first=0.125, kl_beta_last=0.675)
  header, body = md_table(report.render_markdown(results), "## PPO training")
  assert header[6] == "KL coefficient β" and [row[6] for row in body] == ["0.12 → 0.68", "–"]
  fig = report_plots.ppo_curves_figure(results["ppo_training"], report._ppo_labels([adaptive]))
  panel = fig.axes[-1]
  assert panel.get_title() == "KL coefficient β"
  np.testing.assert_allclose(panel.get_lines()[0].get_ydata(), adaptive["curves"]["kl_beta"])
  assert np.isnan(panel.get_lines()[1].get_ydata()).all()  # the fixed run logged none
  # A coefficient that stayed put is not a column.
  adaptive["curves"]["kl_beta"] = [0.1] * len(steps)
  header, _ = md_table(report.render_markdown(results), "## PPO training")
  assert "KL coefficient β" not in header


def test_ppo_examples_are_one_table_row_each_with_their_oracle_quality():
  results = grid_results()
  article = "Summarize the following text in es: " + "word " * 60
  results["ppo_examples"] = [
      {"source": "en", "target": "es", "id": "a", "inputs": article, "sft": "One | two.\nThree.",
       "ppo": "Cut off 744'", "sft_quality": 0.5, "ppo_quality": 0.125},
      {"source": "es", "target": "es", "id": "a", "inputs": article, "sft": "x", "ppo": "y"}]
  text = report.render_markdown(results)
  header, body = md_table(text, "### What PPO writes")
  assert header == ["RM → policy", "input", "SFT sample", "PPO output"]
  # The pipe is escaped inside its cell, so the row keeps 4 cells.
  assert body[0][2:] == ["One \\| two. Three. (0.50)", "Cut off 744' (0.12)"]
  assert len(body[0][1]) == 160 and body[0][1].endswith("…")
  assert body[0][1].startswith("word word")  # the article, without the instruction
  assert body[1][2:] == ["x", "y"]
  results["ppo_examples"].append(dict(results["ppo_examples"][0]))
  with pytest.raises(UserError, match=r"results\['ppo_examples'\]\[2\] repeats the entry"):
    report.render_markdown(results)


def test_ppo_examples_show_a_dialog_from_its_last_turns():
  from xlalign_jax.synthetic import formats
  results = grid_results()
  turns = [("prompter", "The tower is 300 metres tall. " * 8), ("assistant", "Noted."),
           ("prompter", "How tall | is it?")]
  results["ppo_examples"] = [{"source": "en", "target": "es", "id": "a", "sft": "x", "ppo": "y",
                              "inputs": formats.format_dialog_input("es", turns)}]
  _, body = md_table(report.render_markdown(results), "### What PPO writes")
  assert body[0][1].startswith("…") and 150 < len(body[0][1].replace("\\", "")) <= 160
  assert body[0][1].endswith("Assistant: Noted. Human: How tall \\| is it?")
  assert "You are given" not in body[0][1]


def test_summary_answers_which_source_to_use_per_target_under_the_oracle():
  results = grid_results()
  results["winrates"][4].update(ci_low=0.49)  # bon es -> es, oracle: an interval reaching 50%
  header, body = md_table(report.render_markdown(results), "## Summary")
  assert header == ["method", "target", "best source", "its win rate", "in-language RM",
                    "no RM: SFT greedy", "no RM: likeliest of n"]
  oracle = [r for r in results["winrates"] if r["judge"] == "oracle"]
  mark = lambda r: report.pct_ci(r, "win_rate") + (" ✓" if r["ci_low"] > 0.5 else "")
  expected = []
  for method, targets in (("bon", LANGS), ("ppo", ("es",))):
    for t in targets:
      cells = [r for r in oracle if (r["method"], r["target"]) == (method, t)]
      best = max(cells, key=lambda r: r["win_rate"])
      own, = [r for r in cells if r["source"] == t]
      # The oracle's references of grid_results: greedy for en and es, likeliest for es.
      references = {"en": ["60.0 [52.0, 68.0] ✓", "–"],
                    "es": ["65.5 [57.5, 73.5] ✓", "58.0 [50.0, 66.0]"], "ru": ["–", "–"]}
      expected.append([report.METHOD_NAMES[method], t, best["source"], mark(best), mark(own)]
                      + references[t])
  assert body == expected
  assert "✓" not in body[1][4]  # es -> es's interval starts at 49%
  above = sum(r["ci_low"] > 0.5 for r in oracle)
  assert 0 < above < len(oracle)
  assert (f"{above} of {len(oracle)} (method, source, target) cells are above 50% with their "
          "interval (judge: oracle).") in report.render_markdown(results)


def test_summary_under_the_target_rms_marks_outputs_judged_by_the_rm_that_chose_them():
  """With real data the RMs may be the only judges; the in-language cells are then judged by the
  RM that picked (or PPO maximised) them, and say so."""
  results = grid_results()
  own_rm = [dict(r, judge=f"rm:{r['target']}") for r in results["winrates"]
            if r["judge"] == "oracle"]
  results["winrates"], results["references"] = own_rm, []
  text = report.render_markdown(results)
  _, body = md_table(text, "## Summary")
  for method, target, best, best_cell, own_cell in body:
    assert own_cell.split(" ✓")[0].endswith(" †")
    assert best_cell.split(" ✓")[0].endswith(" †") == (best == target)
  assert report.SELF_JUDGED_NOTE in text.split("## Summary", 1)[1].split("##", 1)[0]


def test_ppo_curves_draw_each_run_in_each_metric_panel():
  from xlalign_jax import report_plots
  rows = grid_results()["ppo_training"]
  fig = report_plots.ppo_curves_figure(rows, report.PPO_CURVE_LABELS)
  assert [ax.get_title() for ax in fig.axes] == list(report.PPO_CURVE_LABELS.values())
  for ax, metric in zip(fig.axes, report.PPO_CURVE_LABELS):
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"en → es", "es → es"}
    for r in rows:
      line = lines[f"{r['source']} → {r['target']}"]
      np.testing.assert_array_equal(line.get_xdata(), r["curves"]["step"])
      np.testing.assert_array_equal(line.get_ydata(), r["curves"][metric])
  (legend,) = fig.legends
  assert [t.get_text() for t in legend.get_texts()] == ["en → es", "es → es"]


@pytest.mark.parametrize("change,message", [
    (lambda r: r["winrates"][3].pop("ci_low"), r"results\['winrates'\]\[3\] lacks 'ci_low'"),
    (lambda r: r["winrates"].append(dict(r["winrates"][0])), "repeats the entry"),
    (lambda r: r.pop("winrates"), r"results\['winrates'\] must be a list"),
    (lambda r: r["rm_accuracy"][0].pop("majority"), "lacks 'majority'"),
    (lambda r: r["references"].append(dict(r["references"][1])),
     r"results\['references'\]\[4\] repeats the entry for \('sft_greedy', 'es', 'oracle'\)"),
])
def test_bad_results_are_user_errors(tmp_path, change, message):
  results = grid_results()
  change(results)
  with pytest.raises(UserError, match=message):
    report.write_report(results, str(tmp_path))
  assert not list(tmp_path.iterdir())  # checked before anything is written


def test_agreement_rows_from_winrate_render_in_the_report():
  probs = np.array([0.9, 0.2, 0.7, 0.6])
  row = {"judge_a": "oracle", "judge_b": "sim_llm", "method": "bon",
         **winrate.instance_agreement(probs, probs[::-1]).as_dict(),
         **winrate.ranking_agreement({"en": 0.6, "es": 0.7}, {"en": 0.5, "es": 0.8}).as_dict()}
  results = {**grid_results(), "judge_agreement": [row]}
  header, body = md_table(report.render_markdown(results), "## Judge agreement")
  assert header == ["judge A", "judge B", "method", "instance agreement % [95% CI]", "instances",
                    "Kendall tau", "systems", "dropped"]
  assert body[0][:3] == ["oracle", "sim_llm", "bon"] and body[0][4:] == ["4", "1.000", "2", "0"]
