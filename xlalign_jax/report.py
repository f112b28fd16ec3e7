"""The report of a cross-lingual grid: results.csv, report.md and PNG plots, from results.json.

  write_report(results, out_dir) -> {"csv": path, "markdown": path, "plots": [paths]}

`results` (language codes plain: en, es, ...; rates and accuracies as fractions in [0, 1]):

  winrates         [{"method": "bon"|"ppo", "source", "target", "judge", "win_rate", "ci_low",
                     "ci_high", "n", ...}]  (extra keys such as "dropped" go to the CSV too)
  references       [{"reference": "sft_greedy"|"sft_likeliest", "target", "judge", "win_rate",
                     "ci_low", "ci_high", "n"}]  (optional; outputs no reward model chose, judged
                     against the same baseline: the SFT policy's greedy output, and the likeliest
                     of its best-of-n samples by its own log-probability)
  rm_accuracy      [{"source", "target", "accuracy", "ci_low", "ci_high", "majority",
                     "length_baseline", ...}]  (optional; rm_eval.py also gives paired intervals
                     vs_majority/vs_length_ci_low/high and, pointwise, auc, auc_ci_low/high,
                     length_auc, auc_vs_length_ci_low/high, shown when present)
  rm_probe         [{"source", "target", "kind", "prefers_reference", "ci_low", "ci_high", "n"}]
                                                       (optional; synthetic/rm_probe.py)
  sft_probe        the same keys, scored by the SFT models' log-likelihood (optional)
  rm_score_delta   [{"method", "source", "target", "judge", "delta", "ci_low", "ci_high", "n"}]
                                                                                      (optional)
  bon_oracle_gain  [{"source", "target", "delta", "ci_low", "ci_high", "n", ...}]     (optional;
                     judging.py also gives the target's ceiling, ceiling_ci_low/high, the
                     policy's likeliest candidate's gain likeliest, likeliest_ci_low/high, and the
                     within-prompt rank correlation rank_corr, rank_corr_ci_low/high, rank_corr_n,
                     shown when present)
  bon_pick_profile [{"source", "target", "n", "sentences_pick", "sentences_all", "correct_pick",
                     ..., "repeats_all"}]  (optional; judging.bon_pick_profile)
  judge_agreement  [{"judge_a", "judge_b", "method", "agreement", "ci_low", "ci_high", "n",
                     "kendall_tau", "n_systems", ...}]  any subset; other keys shown as they are
  judge_failures   {judge name: {cause: count}}  (optional; HTTP judge calls without a verdict)
  ppo_training     [{"source", "target", "steps", "reward_first", "reward_last", "kl_first",
                     "kl_last", "response_length_first", "response_length_last", ...,
                     "curves": {"step": [...], "reward": [...], ...}}]  (optional;
                     run_history.ppo_summary: means of a PPO run's first and last 10 steps; with
                     a KL bound also "max_kl" and "steps_above_max_kl"; these and "kl_max" are
                     shown when present)
  ppo_examples     [{"source", "target", "id", "inputs", "sft", "ppo"}]  (optional; a few
                     prompts per PPO run: the SFT sample it is judged against and its output, on
                     the synthetic world with their oracle qualities sft_quality, ppo_quality)
  provenance       {"synthetic": bool, "config": str, "seeds": ..., "versions": {...}, ...}

A summary comes first: per method and target, the best source language and the in-language RM
under the gold judge. The win-rate tables are laid out like the paper's Tables 6-9 (source-language
rows, target-language columns, one table per method x judge), followed by the source ranking per
target (Figure 6).
"""
import collections
import csv
import math
import os
import re
from typing import Callable, Dict, List, Sequence, Tuple

from xlalign_jax.errors import UserError
from xlalign_jax.synthetic import formats

WINRATE_KEYS = ("method", "source", "target", "judge", "win_rate", "ci_low", "ci_high", "n")
RM_ACCURACY_KEYS = ("source", "target", "accuracy", "ci_low", "ci_high", "majority",
                    "length_baseline")
RM_PROBE_KEYS = ("source", "target", "kind", "prefers_reference", "ci_low", "ci_high", "n")
SCORE_DELTA_KEYS = ("method", "source", "target", "judge", "delta", "ci_low", "ci_high", "n")
REFERENCE_KEYS = ("reference", "target", "judge", "win_rate", "ci_low", "ci_high", "n")
REFERENCE_NAMES = {"sft_greedy": "the SFT policy's greedy output",
                   "sft_likeliest": "the likeliest of its best-of-n samples"}
_REFERENCE_COLUMNS = {"sft_greedy": "no RM: SFT greedy", "sft_likeliest": "no RM: likeliest of n"}
ORACLE_GAIN_KEYS = ("source", "target", "delta", "ci_low", "ci_high", "n")
# run_history.PPO_CURVES, labelled (not imported: the report reads results.json alone).
PPO_CURVE_LABELS = {"reward": "RM reward", "kl": "KL to the SFT policy (nats)",
                    "response_length": "response length (tokens)",
                    "entropy": "entropy (nats/token)"}
# Shown too when a run's coefficient changed (run_history.OPTIONAL_PPO_CURVES).
ADAPTIVE_PPO_LABELS = {"kl_beta": "KL coefficient β"}
PPO_EXAMPLE_KEYS = ("source", "target", "id", "inputs", "sft", "ppo")
PPO_TRAINING_KEYS = ("source", "target", "steps", "curves") + tuple(
    f"{metric}_{end}" for metric in PPO_CURVE_LABELS for end in ("first", "last"))
# judging.bon_pick_profile's fields (not imported: the report reads results.json alone), labelled.
_PICK_COLUMNS = (("sentences", "sentences"), ("correct", "correct facts"),
                 ("wrong", "wrong facts"), ("repeats", "repeated facts"))
PICK_PROFILE_KEYS = ("source", "target", "n") + tuple(
    f"{field}_{of}" for field, _ in _PICK_COLUMNS for of in ("pick", "all"))
METHOD_NAMES = {"bon": "Best-of-n", "ppo": "PPO"}
TARGET_RM = "the target's RM"  # rm:<lang> judging <lang>'s outputs, for every target language
_AGREEMENT_COLUMNS = (("judge_a", "judge A"), ("judge_b", "judge B"), ("method", "method"),
                      ("agreement", "instance agreement % [95% CI]"), ("n", "instances"),
                      ("kendall_tau", "Kendall tau"), ("n_systems", "systems"))
_NA = "–"
Rows = Sequence[dict]


# ------------------------------------------------------------------------------ formatting

def _finite(x) -> bool:
  return isinstance(x, (int, float)) and math.isfinite(x)


def _pct(x) -> str:
  return f"{100 * x:.1f}" if _finite(x) else _NA


def pct_ci(row: dict, key: str, ci_prefix: str = "") -> str:
  """`key` with its interval `{ci_prefix}ci_low` / `ci_high`, in percent."""
  if not _finite(row[key]):
    return "n/a"
  low, high = row[f"{ci_prefix}ci_low"], row[f"{ci_prefix}ci_high"]
  return f"{_pct(row[key])} [{_pct(low)}, {_pct(high)}]"


def signed_ci(row: dict, key: str, ci_prefix: str = "") -> str:
  """`key` with its interval `{ci_prefix}ci_low` / `ci_high`, signed."""
  if not _finite(row[key]):
    return "n/a"
  low, high = row[f"{ci_prefix}ci_low"], row[f"{ci_prefix}ci_high"]
  return f"{row[key]:+.3f} [{low:+.3f}, {high:+.3f}]"


def _plain(x) -> str:
  if isinstance(x, float):
    return f"{x:.3f}" if math.isfinite(x) else "n/a"
  return _NA if x is None else str(x)


def _text_cell(text: str, limit: int = 0, keep_end: bool = False) -> str:
  """Free text as one markdown table cell: whitespace collapsed, pipes escaped, and with `limit`
  cut to that many characters (its last ones with `keep_end`)."""
  text = " ".join(str(text).split())
  if limit and len(text) > limit:
    text = ("…" + text[len(text) - limit + 1:].lstrip() if keep_end
            else text[:limit - 1].rstrip() + "…")
  return text.replace("|", "\\|")


def _prompt_cell(inputs: str, limit: int) -> str:
  """A task input as a table cell without its instruction: a summarization input's article from
  its start; a dialog's turns from the end, where the question being answered is."""
  article = formats.parse_summarization_input(inputs)
  if article != inputs.strip():
    return _text_cell(article, limit)
  turns = formats.parse_dialog_input(inputs)
  if not turns:
    return _text_cell(inputs, limit)
  return _text_cell(" ".join(f"{speaker}: {said}" for speaker, said in turns), limit,
                    keep_end=True)


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> List[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def method_name(method: str) -> str:
  return METHOD_NAMES.get(method, method)


def _slug(text: str) -> str:
  """A file-name-safe form of a judge name such as rm:es or http:org/model."""
  return "target-rm" if text == TARGET_RM else re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


# ------------------------------------------------------------------------------ validation

def _check_rows(results: dict, section: str, keys: Sequence[str], required: bool) -> List[dict]:
  rows = results.get(section)
  if rows is None and not required:
    return []
  if not isinstance(rows, list):
    raise UserError(f"results[{section!r}] must be a list of entries, got {type(rows).__name__}")
  cells = set()
  for i, row in enumerate(rows):
    missing = [k for k in keys if k not in row]
    if missing:
      raise UserError(f"results[{section!r}][{i}] lacks {', '.join(map(repr, missing))}")
    cell = tuple(row[k] for k in keys
                 if k in ("method", "reference", "source", "target", "judge", "kind", "id"))
    if cell in cells:
      raise UserError(f"results[{section!r}][{i}] repeats the entry for {cell}")
    cells.add(cell)
  return rows


def _groups(rows: Rows) -> Dict[Tuple[str, str], List[dict]]:
  """Rows by (method, judge), in sorted order. Where every RM judge judges only its own
  language's outputs (as `xlalign run`'s do), they are one judge, TARGET_RM: one source x target
  grid instead of one column per target."""
  own_only = all(r["judge"] == f"rm:{r['target']}" for r in rows if r["judge"].startswith("rm:"))
  groups = collections.defaultdict(list)
  for row in rows:
    groups[(row["method"], _judge_label(row) if own_only else row["judge"])].append(row)
  return dict(sorted(groups.items()))


def grid_axes(rows: Rows) -> Tuple[List[str], List[str]]:
  """(sources, targets) present in the rows, sorted."""
  return sorted({r["source"] for r in rows}), sorted({r["target"] for r in rows})


# ------------------------------------------------------------------------------ markdown

def _grid(rows: Rows, cell: Callable[[dict], str], best_key: str = "") -> List[str]:
  """A source x target table; with best_key, the best source of each target is bold."""
  sources, targets = grid_axes(rows)
  by_cell = {(r["source"], r["target"]): r for r in rows}
  best = {}
  if best_key:
    for t in targets:
      scored = [r for r in rows if r["target"] == t and _finite(r[best_key])]
      if len(scored) > 1:
        best[t] = max(scored, key=lambda r: r[best_key])["source"]
  body = []
  for s in sources:
    cells = []
    for t in targets:
      text = cell(by_cell[(s, t)]) if (s, t) in by_cell else _NA
      cells.append(f"**{text}**" if best.get(t) == s else text)
    body.append([s] + cells)
  return markdown_table(["source \\ target"] + targets, body)


def _ranking(rows: Rows) -> List[str]:
  """Figure 6: per target column, the sources from best to worst win rate."""
  _, targets = grid_axes(rows)
  columns = []
  for t in targets:
    ranked = sorted((r for r in rows if r["target"] == t),
                    key=lambda r: (-r["win_rate"] if _finite(r["win_rate"]) else math.inf,
                                   r["source"]))
    columns.append([f"{r['source']} {win_cell(r)}" for r in ranked])
  depth = max(map(len, columns))
  body = [[str(i + 1)] + [c[i] if i < len(c) else "" for c in columns] for i in range(depth)]
  return markdown_table(["rank"] + targets, body)


def _sample_sizes(rows: Rows) -> str:
  ns = sorted({int(r["n"]) for r in rows if _finite(r["n"])})
  if not ns:
    return ""
  text = f"n = {ns[0]} instances per cell." if len(ns) == 1 else f"n = {ns[0]}-{ns[-1]} per cell."
  dropped = sum(int(r.get("dropped") or 0) for r in rows)
  if dropped:
    text += (f" {dropped} instances got no verdict in both orders and were left out (causes: "
             "results.json, judge_failures).")
  return text


def _winrate_sections(rows: Rows, plots: Dict[Tuple[str, str], List[str]]) -> List[str]:
  lines = ["## Win rates against the target-language SFT model", "",
           "Win rate (%) of the aligned outputs over the SFT outputs in the target language, "
           "judged in both orders (position-bias control), with its 95% bootstrap interval over "
           "prompts (dialog threads of one message tree resampled together). Rows: source "
           "language of the reward model; columns: target language. "
           "Bold: the best source for a target.", ""]
  groups = _groups(rows)
  for (method, judge), group in groups.items():
    lines += [f"### {method_name(method)}, judge: {judge}", "", _sample_sizes(group), ""]
    lines += _grid(group, win_cell, best_key="win_rate") + [""] + self_judged_note(group)
    lines += [f"![{method_name(method)} {judge}]({p})"
              for p in plots.get((method, judge), [])] + [""]
  lines += ["## Source-language ranking per target", "",
            "Sources from best to worst win rate (%) for each target language (as the paper's "
            "Figure 6).", ""]
  for (method, judge), group in groups.items():
    lines += ([f"### {method_name(method)}, judge: {judge}", ""] + _ranking(group) + [""]
              + self_judged_note(group))
  return lines


def _summary_judge(judges: Sequence[str]) -> str:
  """The judge the summary answers with: the oracle, else an LLM judge, else the simulated one,
  else the first in sorted order."""
  for prefix in ("oracle", "http:", "sim_llm"):
    for judge in sorted(judges):
      if judge.startswith(prefix):
        return judge
  return sorted(judges)[0]


def summary_lines(rows: Rows, references: Rows = ()) -> List[str]:
  """The user's question, answered: per method and target, the best source language's win rate
  and the in-language RM's, under one judge, beside that judge's `references` (outputs no RM
  chose) for the target."""
  groups = _groups(rows)
  judge = _summary_judge({j for _, j in groups})
  by_target = {(r["reference"], r["target"]): r for r in references if judged_by(r, judge)}
  present = {name for name, _ in by_target}
  shown = [ref for ref in _REFERENCE_COLUMNS if ref in present]
  lines = ["## Summary", "",
           f"Which source-language RM to use for each target language, and how much it helps "
           f"(judge: {judge}): the best source's win rate (%) over the target's SFT outputs and "
           "the in-language RM's, with 95% intervals"
           + (", beside outputs no RM chose (section \"For scale\")" if shown else "")
           + ". ✓: the interval lies above 50%.", ""]
  mark = lambda r: win_cell(r) + (" ✓" if r["ci_low"] > 0.5 else "")
  body, above, cells, marked = [], 0, 0, []
  for (method, group_judge), group in groups.items():
    if group_judge != judge:
      continue
    for target in grid_axes(group)[1]:
      scored = [r for r in group if r["target"] == target and _finite(r["win_rate"])]
      if not scored:
        continue
      best = max(scored, key=lambda r: (r["win_rate"], r["source"] == target))
      own = [r for r in scored if r["source"] == target]
      body.append([method_name(method), target, best["source"], mark(best),
                   mark(own[0]) if own else _NA]
                  + [mark(by_target[(ref, target)]) if (ref, target) in by_target else _NA
                     for ref in shown])
      above += sum(r["ci_low"] > 0.5 for r in scored)
      cells += len(scored)
      marked += [best] + own
  lines += markdown_table(["method", "target", "best source", "its win rate", "in-language RM"]
                     + [_REFERENCE_COLUMNS[ref] for ref in shown], body)
  return lines + [""] + self_judged_note(marked) + [
      f"{above} of {cells} (method, source, target) cells are above 50% with their interval "
      f"(judge: {judge}).", ""]


def _reference_section(rows: Rows) -> List[str]:
  """Win rates of reference outputs (no reward model) over the same SFT baseline, for scale."""
  meaning = {"sft_greedy": "the SFT policy's greedy output shows what decoding alone gains",
             "sft_likeliest": "the likeliest of the SFT policy's best-of-n samples (by its "
                              "own log-probability) what reranking gains without a reward model"}
  shown = [meaning[ref] for ref in meaning if any(r["reference"] == ref for r in rows)]
  lines = ["## For scale: without a reward model", "",
           "Win rate (%) over the same SFT outputs, by the same judges in both orders, of outputs "
           "that no reward model chose. The SFT outputs are samples at the experiment's "
           f"temperature, so {', and '.join(shown)}: the bars against which the methods above "
           "are worth reading (the dotted lines of their bar charts). " + _sample_sizes(rows), ""]

  targets = sorted({r["target"] for r in rows})
  by_cell = {(r["reference"], _judge_label(r), r["target"]): r for r in rows}
  body = [[REFERENCE_NAMES.get(ref, ref), name]
          + [pct_ci(by_cell[(ref, name, t)], "win_rate") if (ref, name, t) in by_cell else _NA
             for t in targets]
          for ref, name in sorted({(r["reference"], _judge_label(r)) for r in rows})]
  return lines + markdown_table(["output", "judge"] + targets, body) + [""]


def _judge_label(row: dict) -> str:
  """The judge's name, with each target's own RM as one label, TARGET_RM."""
  return TARGET_RM if row["judge"] == f"rm:{row['target']}" else row["judge"]


def judged_by(row: dict, judge: str) -> bool:
  """Whether `row` is the judgement of a `_groups` judge (a judge's name, or TARGET_RM)."""
  return judge in (row["judge"], _judge_label(row))


SELF_JUDGED_NOTE = ("†: judged by the reward model that chose these outputs (best-of-n) or that "
                    "PPO maximised, so not an independent judgment.")


def _dagger(text: str, row: dict) -> str:
  """`text`, marked † where the row's judge is the RM its outputs came from."""
  return text + (" †" if _self_judged(row) else "")


def win_cell(row: dict) -> str:
  return _dagger(pct_ci(row, "win_rate"), row)


def _self_judged(row: dict) -> bool:
  return "source" in row and row["judge"] == f"rm:{row['source']}"  # references have no source


def self_judged_note(rows: Rows) -> List[str]:
  return [SELF_JUDGED_NOTE, ""] if any(map(_self_judged, rows)) else []


def _ppo_training_section(rows: Rows, winrates: Rows, plot: str = None) -> List[str]:
  """What each PPO run optimized, beside what the judges made of its outputs."""
  ppo = {(r["source"], r["target"], _judge_label(r)): r for r in winrates if r["method"] == "ppo"}
  judges = sorted({judge for _, _, judge in ppo})
  bounds = sorted({r["max_kl"] for r in rows if "max_kl" in r})  # ExperimentConfig.ppo_max_kl
  kl_max = any("kl_max" in r for r in rows)
  labels = _ppo_labels(rows)
  body = [[f"{r['source']} → {r['target']}", str(r["steps"])]
          + [f"{r[f'{m}_first']:.2f} → {r[f'{m}_last']:.2f}" if f"{m}_first" in r else _NA
             for m in labels]
          + ([f"{r['kl_max']:.2f}" if "kl_max" in r else _NA] if kl_max else [])
          + [str(r["steps_above_max_kl"]) if r.get("max_kl") == bound else _NA
             for bound in bounds]
          + [win_cell(ppo[key]) if key in ppo else _NA
             for key in ((r["source"], r["target"], judge) for judge in judges)]
          for r in rows]
  lines = ["## PPO training", "",
           "What each PPO run (RM → policy) optimized: means of its first and last 10 steps, "
           "beside the judges' win rate (%) of its outputs over the SFT outputs. A reward that "
           "rises while the win rates stay below 50% means the policy found what the reward "
           "model rewards and the judges do not." + _exploited(rows, ppo, judges), ""]
  lines += markdown_table(["RM → policy", "steps"] + list(labels.values())
                     + (["largest KL"] if kl_max else [])
                     + [f"steps with KL > {b:g}" for b in bounds]
                     + [f"win rate, {judge}" for judge in judges], body) + [""]
  runs = {(r["source"], r["target"]) for r in rows}
  lines += self_judged_note([w for key, w in ppo.items() if key[:2] in runs])
  return lines + ([f"![PPO training curves]({plot})", ""] if plot else [])


def _ppo_labels(rows: Rows) -> Dict[str, str]:
  """PPO_CURVE_LABELS, and those of ADAPTIVE_PPO_LABELS whose metric changed in some run."""
  adaptive = {m: label for m, label in ADAPTIVE_PPO_LABELS.items()
              if any(len(set(r["curves"].get(m, ()))) > 1 for r in rows)}
  return {**PPO_CURVE_LABELS, **adaptive}


def _exploited(rows: Rows, ppo: Dict[tuple, dict], judges: Sequence[str]) -> str:
  """A sentence naming the runs whose RM reward rose while the summary's judge put their win
  rate below 50% with its interval ("" when there are none, or no such judge)."""
  judge = _summary_judge(judges) if judges else None
  runs = [f"{r['source']} → {r['target']}" for r in rows
          if r["reward_last"] > r["reward_first"]
          and (r["source"], r["target"], judge) in ppo
          and ppo[(r["source"], r["target"], judge)]["ci_high"] < 0.5]
  if not runs:
    return ""
  return f" Here ({judge}): {', '.join(runs)}."


def _ppo_examples_section(rows: Rows) -> List[str]:
  """A few prompts per PPO run: the SFT sample it is judged against, and its output."""
  def text(row, key):
    quality = row.get(f"{key}_quality")
    return _text_cell(row[key]) + (f" ({quality:.2f})" if _finite(quality) else "")

  graded = any(_finite(r.get("sft_quality")) for r in rows)
  body = [[f"{r['source']} → {r['target']}", _prompt_cell(r["inputs"], 160), text(r, "sft"),
           text(r, "ppo")] for r in rows]
  return (["### What PPO writes", "",
           "The first prompts of the evaluation set (without the task's instruction): the SFT "
           "sample each PPO output is judged against, and the PPO output"
           + (", each with its oracle quality" if graded else "") + ".", ""]
          + markdown_table(["RM → policy", "input", "SFT sample", "PPO output"], body) + [""])


def _score_delta_section(rows: Rows) -> List[str]:
  lines = ["## Reward-model evaluator score delta", "",
           "Mean reward of the aligned outputs minus that of the SFT outputs under the "
           "target-language RM, with a 95% paired bootstrap interval (the paper's Figure 3).", ""]
  for (method, judge), group in _groups(rows).items():
    lines += [f"### {method_name(method)}, evaluator: {judge}", ""]
    lines += _grid(group, lambda r: _dagger(signed_ci(r, "delta"), r), best_key="delta")
    lines += [""] + self_judged_note(group)
  return lines


def _oracle_gain_section(rows: Rows) -> List[str]:
  lines = ["## Best-of-n oracle gain over a random candidate", "",
           "Oracle quality of the best-of-n choice minus the mean oracle quality of the prompt's "
           "candidates (the expected quality of a random one), with a 95% bootstrap interval "
           f"over prompts; above 0: the RM picks better than chance. {_sample_sizes(rows)}", ""]
  lines += _grid(rows, lambda r: signed_ci(r, "delta"), best_key="delta") + [""]
  for key, text in (("ceiling", "The ceiling, the oracle's own choice among the same candidates "
                                 "(what a perfect RM would gain): "),
                    ("likeliest", "Without an RM, the candidate the policy itself finds likeliest "
                                  "(its log-probability of the sample) gains: ")):
    per_target = {r["target"]: r for r in rows if _finite(r.get(key))}
    if per_target:
      lines += [text + ", ".join(f"{t} {signed_ci(r, key, f'{key}_')}"
                                 for t, r in sorted(per_target.items())) + ".", ""]
  ranked = [r for r in rows if "rank_corr" in r]
  if ranked:
    lines += ["### Within-prompt rank correlation of reward and oracle quality", "",
              "Spearman's correlation between the RM's rewards and the oracle's qualities over "
              "each prompt's candidates, averaged over prompts, with a 95% bootstrap interval; "
              "0: the RM orders candidates at random, 1: as the oracle does. Prompts whose "
              "candidates are all equal are left out.", ""]
    lines += _grid(ranked, lambda r: signed_ci(r, "rank_corr", "rank_corr_"),
                   best_key="rank_corr") + [""]
  return lines


def _pick_profile_section(rows: Rows) -> List[str]:
  body = [[f"{r['source']} → {r['target']}"]
          + [f"{r[f'{key}_pick']:.2f} vs {r[f'{key}_all']:.2f}" for key, _ in _PICK_COLUMNS]
          for r in rows]
  return (["## What best-of-n picks", "",
           "Per best-of-n choice, the oracle's count of sentences and of correct, wrong and "
           "repeated facts, against the mean over all candidates of the same prompts (choice vs "
           "all): what the RM (source → target language) rewards on the policy's own samples. "
           f"{_sample_sizes(rows)}", ""]
          + markdown_table(["RM → policy"] + [label for _, label in _PICK_COLUMNS], body) + [""])


def _baseline(rows: Rows, target: str, key: str) -> str:
  # A property of the target's test set; distinct values across sources are all shown.
  values = dict.fromkeys(_pct(r[key]) for r in rows if r["target"] == target)
  return " / ".join(values) or _NA


def intervals_above_zero(row: dict, *keys: str) -> bool:
  """Whether every paired interval `key_ci_low` present in the row lies above 0."""
  present = [k for k in keys if _finite(row.get(f"{k}_ci_low"))]
  return bool(present) and all(row[f"{k}_ci_low"] > 0 for k in present)


def _baseline_rows(rows: Rows, baselines: Sequence[Tuple[str, str]]) -> List[str]:
  _, targets = grid_axes(rows)
  return ["| " + " | ".join([f"*{label}*"] + [_baseline(rows, t, key) for t in targets]) + " |"
          for key, label in baselines]


def _group_counts(rows: Rows) -> str:
  counts = {r["target"]: (r["n"], r["groups"]) for r in rows if "groups" in r}
  if not counts:
    return ""
  return (" Examples in groups: " + ", ".join(f"{t} {n} in {g}" for t, (n, g) in counts.items())
          + ".")


def _rm_accuracy_section(rows: Rows) -> List[str]:
  table = _grid(rows, lambda r: pct_ci(r, "accuracy") + (" ✓" if intervals_above_zero(
      r, "vs_majority", "vs_length") else ""), best_key="accuracy")
  table += _baseline_rows(rows, (("majority", "majority baseline"),
                                 ("length_baseline", "length baseline")))
  lines = ["## Reward-model accuracy", "",
           "Accuracy (%) of the RM trained on the source language (rows) on the target "
           "language's validation data (columns), with its 95% interval: for pointwise labels "
           "(Seahorse) P(yes) > 0.5 against the label, for preference pairs the chosen response "
           "scoring higher. The baselines are fitted on the train split: the majority label, and a "
           "length rule. ✓: above both baselines (paired 95% bootstrap interval of the "
           "difference above 0). Examples that share an input (the rated summaries of one "
           "article, the pairs of one message tree) are resampled together (cluster bootstrap)."
           + _group_counts(rows), ""] + table + [""]
  ranked = [r for r in rows if _finite(r.get("auc"))]
  if ranked:
    table = _grid(ranked, lambda r: pct_ci(r, "auc", ci_prefix="auc_")
                  + (" ✓" if intervals_above_zero(r, "auc_vs_length") else ""), best_key="auc")
    lines += ["### Ranking: ROC AUC", "",
              "ROC AUC (%) of the reward for the pointwise label: the chance that a 'yes' output "
              "outscores a 'no' one, whatever the threshold (50: no signal). An RM read in another "
              "language can rank well while its threshold is off, which accuracy alone hides. ✓: "
              "above the length rule's AUC (paired 95% interval).", ""]
    lines += table + _baseline_rows(ranked, (("length_auc", "length rule"),)) + [""]
  return lines


def _probe_table(rows: Rows, scorer: str) -> List[str]:
  kinds = list(dict.fromkeys(r["kind"] for r in rows))
  pairs = list(dict.fromkeys((r["source"], r["target"]) for r in rows))
  cell = {(r["source"], r["target"], r["kind"]): pct_ci(r, "prefers_reference") for r in rows}
  body = [[f"{s} → {t}"] + [cell.get((s, t, k), _NA) for k in kinds] for s, t in pairs]
  header = [f"{scorer} → articles"] + [k.replace("_", " ") for k in kinds]
  return markdown_table(header, body) + [""]


# results.json section -> (heading, what its table shows, the scorer's column label)
_PROBE_SECTIONS = (
    ("rm_probe", "## What each reward model notices",
     "How often (%) the RM (source → target language) scores a fresh article's reference "
     "summary above a copy with one mistake, with its 95% interval; 50% means blind to that "
     "mistake. The first four mistakes keep the length; omission and repetition show a "
     "length preference. Other article: the reference with its own article against the "
     "same reference with another article (that states none of its facts); an RM that "
     "does not read the article scores 50% there.", "RM"),
    ("sft_probe", "### What each SFT model's likelihood notices",
     "The same cases scored by the log-likelihood of the summary under each language's SFT "
     "model, the model that language's RM starts from: what its own predictions know of "
     "each mistake, in its language and in the others. Above 50% in another language, the "
     "check carries across languages; at 50%, an RM built on that model has nothing there "
     "to reuse. A likelihood falls with every added token, so omission and repetition "
     "mostly measure length here.", "SFT"),
)


def _agreement_section(rows: Rows) -> List[str]:
  known = [(k, label) for k, label in _AGREEMENT_COLUMNS if any(k in r for r in rows)]
  consumed = {k for k, _ in known} | {"ci_low", "ci_high"}
  extra = list(dict.fromkeys(k for r in rows for k in r if k not in consumed))
  body = [[(pct_ci(r, k) if k == "agreement" else _plain(r.get(k)))
           if k in r else _NA for k, _ in known] + [_plain(r.get(k)) for k in extra]
          for r in rows]
  return (["## Judge agreement", "",
           "Instance agreement: share of comparisons where two judges prefer the same output "
           "(ties excluded), with a Wilson interval. Kendall tau: agreement of the two judges' "
           "rankings of the systems by win rate.", ""]
          + markdown_table([label for _, label in known] + extra, body) + [""])


def _provenance_section(provenance: dict) -> List[str]:
  lines = ["## Provenance", ""]
  for key, value in provenance.items():
    if isinstance(value, str) and "\n" in value:  # e.g. the final config.gin
      lines += [f"- **{key}**:", "", "```", value.rstrip("\n"), "```", ""]
    elif isinstance(value, dict):
      lines.append(f"- **{key}**:")
      lines += [f"  - {k}: {_plain(v) if isinstance(v, float) else v}" for k, v in value.items()]
    else:
      lines.append(f"- **{key}**: {value}")
  return lines + [""]


def render_markdown(results: dict, plots: Dict[Tuple[str, str], List[str]] = None,
                    ppo_plot: str = None) -> str:
  """report.md's text; `plots` maps (method, judge) to image paths relative to the report,
  `ppo_plot` is the PPO training curves' path."""
  winrates = _check_rows(results, "winrates", WINRATE_KEYS, required=True)
  provenance = results.get("provenance") or {}
  lines = ["# Zero-shot cross-lingual alignment by reward-model transfer: results", ""]
  if provenance.get("synthetic"):
    langs = ", ".join(sorted({r[k] for r in winrates for k in ("source", "target")}))
    lines += [f"> **The languages are synthetic stand-ins** ({langs} name generated languages, "
              "not the real ones): the numbers describe the synthetic world and are not "
              "comparable with the paper's.", ""]
  references = _check_rows(results, "references", REFERENCE_KEYS, required=False)
  lines += summary_lines(winrates, references) + _winrate_sections(winrates, plots or {})
  if references:
    lines += _reference_section(references)
  gains = _check_rows(results, "bon_oracle_gain", ORACLE_GAIN_KEYS, required=False)
  if gains:
    lines += _oracle_gain_section(gains)
  picks = _check_rows(results, "bon_pick_profile", PICK_PROFILE_KEYS, required=False)
  if picks:
    lines += _pick_profile_section(picks)
  deltas = _check_rows(results, "rm_score_delta", SCORE_DELTA_KEYS, required=False)
  if deltas:
    lines += _score_delta_section(deltas)
  accuracy = _check_rows(results, "rm_accuracy", RM_ACCURACY_KEYS, required=False)
  if accuracy:
    lines += _rm_accuracy_section(accuracy)
  for section, heading, text, scorer in _PROBE_SECTIONS:
    probe = _check_rows(results, section, RM_PROBE_KEYS, required=False)
    if probe:
      lines += [heading, "", text, ""] + _probe_table(probe, scorer)
  ppo_training = _check_rows(results, "ppo_training", PPO_TRAINING_KEYS, required=False)
  if ppo_training:
    lines += _ppo_training_section(ppo_training, winrates, ppo_plot)
  examples = _check_rows(results, "ppo_examples", PPO_EXAMPLE_KEYS, required=False)
  if examples:
    lines += ([] if ppo_training else ["## PPO training", ""]) + _ppo_examples_section(examples)
  if results.get("judge_agreement"):
    lines += _agreement_section(results["judge_agreement"])
  if provenance:
    lines += _provenance_section(provenance)
  return "\n".join(lines).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------ CSV and files

def write_csv(rows: Rows, path: str):
  """One row per win-rate entry: WINRATE_KEYS first, then any other keys in first-seen order."""
  extra = dict.fromkeys(k for r in rows for k in r if k not in WINRATE_KEYS)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=list(WINRATE_KEYS) + list(extra), restval="")
    writer.writeheader()
    writer.writerows(rows)  # str(float) round-trips exactly


def write_report(results: dict, out_dir: str) -> dict:
  """Writes results.csv, report.md and plots/*.png under out_dir; returns their paths."""
  from xlalign_jax import report_plots  # pylint: disable=g-import-not-at-top  (matplotlib: slow)
  winrates = _check_rows(results, "winrates", WINRATE_KEYS, required=True)
  groups = _groups(winrates)
  references = _check_rows(results, "references", REFERENCE_KEYS, required=False)
  plots = {key: [os.path.join("plots", f"{_slug(key[0])}_{_slug(key[1])}_{kind}.png")
                 for kind in ("heatmap", "bars")] for key in groups}
  ppo_training = _check_rows(results, "ppo_training", PPO_TRAINING_KEYS, required=False)
  ppo_plot = os.path.join("plots", "ppo_training.png") if ppo_training else None
  # Validates every section before anything is written.
  markdown = render_markdown(results, plots, ppo_plot)
  os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
  csv_path = os.path.join(out_dir, "results.csv")
  write_csv(winrates, csv_path)
  for (method, judge), group in groups.items():
    title = f"{method_name(method)} win rate vs target-language SFT (%)\njudge: {judge}"
    heatmap_path, bars_path = (os.path.join(out_dir, p) for p in plots[(method, judge)])
    report_plots.heatmap(group, title, heatmap_path)
    report_plots.bars(group, title, bars_path,
                      [r for r in references if judged_by(r, judge)])
  if ppo_plot:
    report_plots.ppo_curves(ppo_training, _ppo_labels(ppo_training),
                            os.path.join(out_dir, ppo_plot))
  md_path = os.path.join(out_dir, "report.md")
  with open(md_path, "w", encoding="utf-8") as f:
    f.write(markdown)
  return {"csv": csv_path, "markdown": md_path,
          "plots": [os.path.join(out_dir, p) for paths in plots.values() for p in paths]
                   + ([os.path.join(out_dir, ppo_plot)] if ppo_plot else [])}
