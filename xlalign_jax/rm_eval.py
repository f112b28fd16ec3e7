"""`xlalign rm-eval`: reward-model accuracy on tasks of any language, with the paper's baselines.

  xlalign rm-eval --checkpoint en=RUNS/rm_en --checkpoint es=RUNS/rm_es \
      --task xlalign_v1.seahorse.en.rm --task xlalign_v1.seahorse.es.rm --data_dir DIR \
      --output rm_accuracy.json

Pointwise tasks (Seahorse): accuracy of P(yes) = sigmoid(r) > 0.5 against the label; baselines:
the majority label of the train split, and a length threshold (direction and cut fitted on train).
Pairwise tasks (OpenAssistant): accuracy of r(chosen) > r(rejected); baseline: the longer (or,
if train says so, the shorter) response wins. Accuracies carry 95% Wilson intervals, and each
baseline the paired bootstrap interval of the RM's accuracy minus its own (`vs_majority`,
`vs_length`). Where examples share their input (the rated summaries of one article, the pairs of
one message tree: the task's `group`), they are not independent: every interval then resamples
whole groups (the cluster bootstrap, a percentile interval for accuracy too), and `groups` counts
them. Pointwise tasks also get the ROC AUC of the reward and of the length baseline, and the
paired interval of their difference (`auc_vs_length`): these do not depend on where the RM puts its
threshold. Baselines are fitted once per task, however many RMs read it. Over several RMs and tasks
it writes the source x target matrix (the paper's Figure 7) as JSON and CSV.
"""
import csv
import dataclasses
import json
import pathlib
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from xlalign_jax import data_pipeline, feature_converters, fileio, partitioning, stats
from xlalign_jax.errors import UserError
from xlalign_jax.score import Scorer

_TASK_LANG = re.compile(r"xlalign_v1\.\w+\.([a-z]{2})\.(rm|sft)")


def source_language(spec: str) -> Tuple[str, str]:
  """`LANG=PATH` or `PATH` -> (lang, path). The language of a bare PATH is read from the task its
  run trained on: `config.gin` of an `xlalign train` run, or `loop_config.json` of a stage of
  `xlalign run`, in the checkpoint's directory or above it."""
  if "=" in spec and not pathlib.Path(spec).exists():
    lang, path = spec.split("=", 1)
    return lang, path
  for d in (pathlib.Path(spec), *pathlib.Path(spec).parents):
    loop_config = d / "loop_config.json"
    texts = [(d / "config.gin").read_text()] if (d / "config.gin").is_file() else []
    if loop_config.is_file():
      texts.append(str(json.loads(loop_config.read_text()).get("mixture_or_task_name", "")))
    for text in texts:
      match = _TASK_LANG.search(text)
      if match:
        return match.group(1), spec
  raise UserError(f"cannot tell the language of RM {spec}; write it as LANG={spec}")


def fit_length_threshold(lengths: np.ndarray, labels: np.ndarray) -> Tuple[int, float]:
  """Direction (+1: longer is 'yes') and cut maximising train accuracy of `d*(len - cut) > 0`."""
  best = (1, -np.inf, -1.0)
  for cut in np.unique(np.concatenate([lengths - 0.5, [lengths.min() - 1.0]])):
    for direction in (1, -1):
      acc = np.mean((direction * (lengths - cut) > 0) == labels)
      if acc > best[2]:
        best = (direction, cut, acc)
  return best[0], best[1]


def _lengths(vocab, texts: Sequence[str]) -> np.ndarray:
  return np.array([len(vocab.encode(t)) for t in texts], np.float64)


@dataclasses.dataclass
class TaskSplit:
  """One task's evaluation split and its baselines, which depend on the task only (fitted on the
  train split once, however many RMs are evaluated on it)."""
  name: str
  target: str
  split: str
  inputs: List[str]
  outputs: Dict[str, List[str]]  # pointwise: {"targets"}; pairwise: {"chosen", "rejected"}
  labels: Optional[np.ndarray]  # pointwise: label > 0.5
  baselines: Dict[str, np.ndarray]  # name -> per-example correctness (a tie counts 1/2)
  length_score: Optional[np.ndarray]  # pointwise: the length baseline as a score, for its AUC
  # Per example, what it shares its input with (the task's `group`); None: nothing.
  groups: Optional[np.ndarray] = None

  @property
  def pointwise(self) -> bool:
    return self.labels is not None

  @property
  def n_groups(self) -> int:
    return len(self.inputs) if self.groups is None else len(np.unique(self.groups))



def load_task_split(vocab, task_name: str, split: str, limit: Optional[int] = None) -> TaskSplit:
  task = data_pipeline.get_task(task_name)
  pointwise = feature_converters.reward_model_loss(task) == "pointwise"
  examples = list(data_pipeline.text_examples(task, split, limit))
  if not examples:
    raise UserError(f"task {task_name} has no {split} examples")
  train = list(data_pipeline.text_examples(task, "train", limit))
  target = examples[0].get("lang", task_name)
  inputs = [e["inputs"] for e in examples]
  groups = np.array([data_pipeline.example_group(e, i) for i, e in enumerate(examples)])
  if pointwise:
    labels = np.array([e["label"] > 0.5 for e in examples])
    train_labels = np.array([e["label"] > 0.5 for e in train])
    direction, cut = fit_length_threshold(_lengths(vocab, [e["targets"] for e in train]),
                                          train_labels)
    length_score = direction * (_lengths(vocab, [e["targets"] for e in examples]) - cut)
    baselines = {"majority": (labels == (train_labels.mean() >= 0.5)).astype(np.float64),
                 "length_baseline": ((length_score > 0) == labels).astype(np.float64)}
    outputs = {"targets": [e["targets"] for e in examples]}
    return TaskSplit(task_name, target, split, inputs, outputs, labels, baselines, length_score,
                     groups)
  diff_train = (_lengths(vocab, [e["chosen"] for e in train]) -
                _lengths(vocab, [e["rejected"] for e in train]))
  direction = 1 if np.mean(diff_train > 0) >= np.mean(diff_train < 0) else -1
  diff = direction * (_lengths(vocab, [e["chosen"] for e in examples]) -
                      _lengths(vocab, [e["rejected"] for e in examples]))
  outputs = {k: [e[k] for e in examples] for k in ("chosen", "rejected")}
  # A pair has no majority class.
  return TaskSplit(task_name, target, split, inputs, outputs, None,
                   {"length_baseline": np.where(diff == 0, 0.5, diff > 0)}, None, groups)


def evaluate_task(scorer: Scorer, vocab, data: TaskSplit) -> Dict:
  """Accuracy of one RM on one task split, beside the baselines.

  Beyond accuracy with its interval (Wilson, or the cluster bootstrap's where examples share a
  group): for each baseline, the paired bootstrap interval of
  accuracy minus the baseline's (the RM beats it when the interval's low end is above 0); for
  pointwise tasks, the ROC AUC of the reward and of the length baseline (threshold-free, so an RM
  whose scale shifts in another language is judged on its ranking).
  """
  if data.pointwise:
    r = scorer.score_texts(vocab, data.inputs, data.outputs["targets"])
    correct = ((r > 0) == data.labels).astype(np.float64)
  else:
    r_chosen = scorer.score_texts(vocab, data.inputs, data.outputs["chosen"])
    r_rejected = scorer.score_texts(vocab, data.inputs, data.outputs["rejected"])
    correct = (r_chosen > r_rejected).astype(np.float64)
  groups = stats.repeated_groups(data.groups)
  accuracy, low, high = (stats.binomial_ci(int(correct.sum()), len(correct)) if groups is None
                         else stats.bootstrap_ci(correct, groups=groups))
  entry = {"task": data.name, "target": data.target, "split": data.split, "n": len(correct),
           "groups": data.n_groups, "accuracy": float(accuracy), "ci_low": float(low),
           "ci_high": float(high), "majority": None}
  for name, baseline_correct in data.baselines.items():
    entry[name] = float(baseline_correct.mean())
    _put_interval(entry, f"vs_{_SHORT[name]}",
                  stats.paired_bootstrap_ci(correct, baseline_correct, groups=groups))
  if data.pointwise and 0 < data.labels.sum() < len(data.labels):
    _put_interval(entry, "auc", stats.auc_ci(r, data.labels, groups=groups))
    entry["length_auc"] = float(stats.roc_auc(data.length_score, data.labels))
    _put_interval(entry, "auc_vs_length",
                  stats.auc_ci(r, data.labels, data.length_score, groups=groups))
  return entry


_SHORT = {"majority": "majority", "length_baseline": "length"}


def _put_interval(entry: Dict, key: str, interval: stats.Interval) -> None:
  entry[key], entry[f"{key}_ci_low"], entry[f"{key}_ci_high"] = map(float, interval)


def evaluate(rm_specs: Sequence[str], tasks: Sequence[str], vocab, split: str = "validation",
             limit: Optional[int] = None, batch_size: int = 64,
             mesh_config: partitioning.MeshConfig = partitioning.MeshConfig()) -> List[Dict]:
  rms = [source_language(spec) for spec in rm_specs]
  sources = [source for source, _ in rms]
  twice = sorted({s for s in sources if sources.count(s) > 1})
  if twice:  # one cell of the matrix per (source, target): two would overwrite each other
    raise UserError(f"more than one RM for source language {', '.join(twice)}: "
                    f"{', '.join(p for s, p in rms if s in twice)}; label each with its language "
                    "as LANG=PATH")
  splits = [load_task_split(vocab, t, split, limit) for t in tasks]
  entries = []
  for source, path in rms:
    scorer = Scorer(path, batch_size, reward=True, mesh_config=mesh_config)
    for data in splits:
      entry = evaluate_task(scorer, vocab, data)
      entries.append({"source": source, "checkpoint": path, **entry})
      print(f"RM {source} on {data.name}: {_summary(entry)}", flush=True)
  return entries


def _summary(e: Dict) -> str:
  text = (f"accuracy {e['accuracy']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}] (n={e['n']}, "
          f"{e['groups']} groups)")
  for name, short in _SHORT.items():
    if e.get(name) is not None:
      text += (f", {short} {e[name]:.3f} (difference [{e[f'vs_{short}_ci_low']:+.3f}, "
               f"{e[f'vs_{short}_ci_high']:+.3f}])")
  if "auc" in e:
    text += (f", AUC {e['auc']:.3f} (length {e['length_auc']:.3f}, difference "
             f"[{e['auc_vs_length_ci_low']:+.3f}, {e['auc_vs_length_ci_high']:+.3f}])")
  return text


def write(entries: List[Dict], output: str) -> None:
  out = pathlib.Path(output)
  matrix: Dict[str, Dict[str, float]] = {}
  for e in entries:
    matrix.setdefault(e["source"], {})[e["target"]] = e["accuracy"]
  fileio.write_text(out, json.dumps({"rm_accuracy": entries, "matrix": matrix}, indent=2))
  fields = ["source", "target", "task", "split", "n", "groups", "accuracy", "ci_low", "ci_high",
            "majority", "length_baseline"]
  fields += [f"{key}{end}" for key in ("vs_majority", "vs_length", "auc", "auc_vs_length")
             for end in ("", "_ci_low", "_ci_high")]
  fields.insert(-3, "length_auc")
  fields.append("checkpoint")
  with fileio.open_for_write(out.with_suffix(".csv"), newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows({k: e.get(k) for k in fields} for e in entries)
