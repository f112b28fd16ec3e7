"""`xlalign compare WORKDIR [WORKDIR ...] --output DIR [--judge oracle]`: finished grids side by
side.

Issue 7 asks whether a result "holds with other seeds and languages": that is one grid per seed
(`xlalign demo --seed 1 --workdir W1`, `--langs de,tr,vi`, another setting), and this command
lines up their `results.json`. It writes to DIR:
  compare.md    per (method, source, target) cell, each run's win rate under the judge with its
                95% interval, and in how many runs the interval lies above 50%; per target
                language, each run's in-language RM accuracy and whether it beats both baselines;
                per (source, target), each run's best-of-n oracle gain over a random candidate
  compare.csv   one row per cell and run
  compare.json  the same as data
  compare.png   each cell's win rates with their intervals, one colour per run

Runs are labelled by their seed, their languages and the experiment settings in which they differ
(their directory too where two would still share a label).
Each run's interval is its own, over its own prompts; the runs are not pooled, since every seed
draws another world.
"""
import csv
import json
import pathlib
import re
from typing import Dict, List, Sequence, Tuple

from xlalign_jax import experiment, fileio, report_plots
from xlalign_jax.errors import UserError
from xlalign_jax.report import (intervals_above_zero, judged_by, markdown_table, method_name,
                                pct_ci, self_judged_note, signed_ci, win_cell)

Cell = Tuple[str, str, str]  # (method, source, target)
# Settings a run label names anyway (seed, languages) or that change no result (where it ran, how
# it was sharded and saved).
_UNLABELLED = {f"ExperimentConfig.{field}" for field in ("seed", "langs",
                                                         *experiment.RESULT_NEUTRAL_FIELDS)}


def load_run(workdir: str) -> dict:
  """A finished grid's results.json; a one-line error where there is none or it is not one."""
  path = pathlib.Path(workdir) / "results.json"
  if not path.is_file():
    raise UserError(f"{path} not found: run the grid in {workdir} to its report stage first")
  try:
    results = json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as exc:
    raise UserError(f"{path} is not JSON ({exc.msg}, line {exc.lineno})") from None
  if not isinstance(results, dict) or not isinstance(results.get("winrates"), list):
    raise UserError(f"{path} has no 'winrates' list: not the results of `xlalign run`")
  return results


def gin_settings(config_text: str) -> Dict[str, str]:
  """{'ExperimentConfig.rm_lr': '0.0001', ...} from a gin config string (as results.json's
  provenance keeps it), continuation lines joined."""
  settings, key = {}, None
  for line in config_text.replace("\\\n", " ").splitlines():
    match = re.match(r"^([A-Za-z_][\w.]*\.\w+) = (.*)$", line)
    if match:
      key = match.group(1)
      settings[key] = " ".join(match.group(2).split())
    elif key and line[:1].isspace() and line.strip():  # a value continued on indented lines
      settings[key] += " " + line.strip()
    else:
      key = None
  return settings


def run_labels(workdirs: Sequence[str], runs: Sequence[dict]) -> List[str]:
  """'seed 0, en/es/ru' per run, plus each experiment setting in which the run differs from most
  others ('rm_lr=0.0001'; with two runs, each of their differences); runs that would still share
  a label get their directory added."""
  provenances = [r.get("provenance", {}) for r in runs]
  settings = [gin_settings(p.get("config", "")) for p in provenances]
  keys = sorted(k for k in {k for s in settings for k in s} - _UNLABELLED
                if not k.startswith("MeshConfig."))
  labels = []
  for prov, setting in zip(provenances, settings):
    parts = [f"seed {prov.get('seed', '?')}", "/".join(prov.get("langs", [])) or "?"]
    parts += [f"{k.split('.')[-1]}={setting.get(k, '?')}" for k in keys
              if 2 * sum(s.get(k) == setting.get(k) for s in settings) <= len(settings)]
    labels.append(", ".join(parts))
  return [f"{l} ({pathlib.Path(w).name})" if labels.count(l) > 1 else l
          for l, w in zip(labels, workdirs)]


def compare(labels: Sequence[str], runs: Sequence[dict], judge: str) -> dict:
  """Per cell, each run's win-rate row under `judge` (a judge's name, e.g. oracle, or the
  report's "the target's RM"); per target, each run's in-language RM accuracy row; per (source,
  target), each run's best-of-n oracle gain row."""
  judged = [[r for r in run["winrates"] if judged_by(r, judge)] for run in runs]
  missing = [l for l, rows in zip(labels, judged) if not rows]
  if missing:
    known = sorted({r["judge"] for run in runs for r in run["winrates"]})
    raise UserError(f"no win rates under judge {judge!r} in run {missing[0]}; its results have "
                    f"judges {', '.join(known)}")
  cells: Dict[Cell, Dict[str, dict]] = {}
  for label, rows in zip(labels, judged):
    for r in rows:
      cells.setdefault((r["method"], r["source"], r["target"]), {})[label] = r
  winrates = []
  for (method, source, target), by_run in sorted(cells.items()):
    above = sum(r["ci_low"] > 0.5 for r in by_run.values())
    winrates.append({"method": method, "source": source, "target": target, "runs": by_run,
                     "runs_above_50": above, "runs_with_cell": len(by_run)})
  accuracy: Dict[str, Dict[str, dict]] = {}
  for label, run in zip(labels, runs):
    for r in run.get("rm_accuracy", []):
      if r["source"] == r["target"]:
        accuracy.setdefault(r["target"], {})[label] = dict(
            r, above_baselines=intervals_above_zero(r, "vs_majority", "vs_length"))
  gains: Dict[Tuple[str, str], Dict[str, dict]] = {}
  for label, run in zip(labels, runs):
    for r in run.get("bon_oracle_gain", []):
      gains.setdefault((r["source"], r["target"]), {})[label] = r
  return {"judge": judge, "runs": list(labels), "winrates": winrates,
          "rm_accuracy": [{"target": t, "runs": accuracy[t]} for t in sorted(accuracy)],
          "bon_oracle_gain": [{"source": s, "target": t, "runs": gains[s, t],
                               "runs_above_0": sum(r["ci_low"] > 0 for r in gains[s, t].values())}
                              for s, t in sorted(gains)]}


def _run_cells(row: dict, labels: Sequence[str], text, line: float) -> List[str]:
  """One cell per run: `text(run's row)`, bold where its interval lies above `line`; blank where
  the run lacks the row."""
  cells = []
  for label in labels:
    r = row["runs"].get(label)
    cells.append("" if r is None else f"**{text(r)}**" if r["ci_low"] > line else text(r))
  return cells


def render_markdown(comparison: dict) -> str:
  labels = comparison["runs"]
  lines = [f"# {len(labels)} runs compared", "",
           f"Win rates (%) of the aligned outputs over the target's SFT outputs under the judge "
           f"`{comparison['judge']}`, each with its run's 95% interval; **bold**: the interval "
           "lies above 50%. The last column counts the runs where it does. A blank: the run has no "
           "such cell (other languages, no PPO for the pair).", ""]
  body = [[method_name(row["method"]), row["source"], row["target"],
           *_run_cells(row, labels, win_cell, 0.5),
           f"{row['runs_above_50']} of {row['runs_with_cell']}"]
          for row in comparison["winrates"]]
  lines += markdown_table(["method", "source", "target", *labels, "above 50%"], body) + [""]
  lines += self_judged_note([r for row in comparison["winrates"] for r in row["runs"].values()])
  if comparison["rm_accuracy"]:
    lines += ["## In-language reward-model accuracy", "",
              "Validation accuracy (%) of each target language's own RM with its 95% interval; "
              "✓: above both the majority and the length baseline (paired intervals of the "
              "differences above 0).", ""]
    body = []
    for row in comparison["rm_accuracy"]:
      body.append([row["target"]] + [
          (pct_ci(row["runs"][l], "accuracy") + (" ✓" if row["runs"][l]["above_baselines"]
                                                   else "")) if l in row["runs"] else ""
          for l in labels])
    lines += markdown_table(["RM (= target)", *labels], body) + [""]
  if comparison["bon_oracle_gain"]:
    lines += ["## Best-of-n oracle gain over a random candidate", "",
              "Oracle quality of the best-of-n choice minus the mean of the prompt's candidates, "
              "with its run's 95% interval; **bold**: above 0 (the RM picks better than chance).",
              ""]
    body = [[row["source"], row["target"],
             *_run_cells(row, labels, lambda r: signed_ci(r, "delta"), 0.0),
             f"{row['runs_above_0']} of {len(row['runs'])}"]
            for row in comparison["bon_oracle_gain"]]
    lines += markdown_table(["source", "target", *labels, "above 0"], body) + [""]
  return "\n".join(lines)


def write_csv(comparison: dict, path: pathlib.Path) -> None:
  with fileio.open_for_write(path, newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["method", "source", "target", "judge", "run", "win_rate", "ci_low",
                     "ci_high", "n"])
    for row in comparison["winrates"]:
      for label, r in row["runs"].items():
        writer.writerow([row["method"], row["source"], row["target"], r["judge"], label,
                         r["win_rate"], r["ci_low"], r["ci_high"], r["n"]])


def write_comparison(workdirs: Sequence[str], output: str, judge: str) -> None:
  """`xlalign compare`: the four files in `output`, and a one-line summary."""
  runs = [load_run(w) for w in workdirs]
  labels = run_labels(workdirs, runs)
  comparison = compare(labels, runs, judge)
  out = pathlib.Path(output)
  if out.exists() and not out.is_dir():
    raise UserError(f"--output {out} is a file; compare writes a directory of four files there")
  out.mkdir(parents=True, exist_ok=True)
  comparison["workdirs"] = dict(zip(labels, map(str, workdirs)))
  fileio.write_text(out / "compare.json", json.dumps(comparison, indent=2))
  fileio.write_text(out / "compare.md", render_markdown(comparison))
  write_csv(comparison, out / "compare.csv")
  report_plots.forest(comparison, str(out / "compare.png"))
  rows = comparison["winrates"]
  everywhere = sum(r["runs_above_50"] == r["runs_with_cell"] for r in rows)
  print(f"{len(runs)} runs compared under judge {judge}: {everywhere} of {len(rows)} cells "
        f"above 50% in every run that has them; wrote {out}/compare.md, compare.csv, "
        "compare.json, compare.png", flush=True)
