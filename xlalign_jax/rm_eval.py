"""`xlalign rm-eval`: reward-model accuracy on tasks of any language, with the paper's baselines.

  xlalign rm-eval --checkpoint en=RUNS/rm_en --checkpoint es=RUNS/rm_es \
      --task xlalign_v1.seahorse.en.rm --task xlalign_v1.seahorse.es.rm --data_dir DIR \
      --output rm_accuracy.json

Pointwise tasks (Seahorse): accuracy of P(yes) = sigmoid(r) > 0.5 against the label; baselines:
the majority label of the train split, and a length threshold (direction and cut fitted on train).
Pairwise tasks (OpenAssistant): accuracy of r(chosen) > r(rejected); baseline: the longer (or,
if train says so, the shorter) response wins. Accuracies carry 95% Wilson intervals. Over several
RMs and tasks it writes the source x target matrix (the paper's Figure 7) as JSON and CSV.
"""
import csv
import json
import pathlib
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from xlalign_jax import data_pipeline, fileio, stats
from xlalign_jax.errors import UserError
from xlalign_jax.score import Scorer

_TASK_LANG = re.compile(r"xlalign_v1\.\w+\.([a-z]{2})\.(rm|sft)")


def source_language(spec: str) -> Tuple[str, str]:
  """`LANG=PATH` or `PATH` (language read from the run's config.gin task name) -> (lang, path)."""
  if "=" in spec and not pathlib.Path(spec).exists():
    lang, path = spec.split("=", 1)
    return lang, path
  for d in (pathlib.Path(spec), *pathlib.Path(spec).parents):
    gin_file = d / "config.gin"
    if gin_file.is_file():
      match = _TASK_LANG.search(gin_file.read_text())
      if match:
        return match.group(1), spec
      break
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


def evaluate_task(scorer: Scorer, vocab, task_name: str, split: str,
                  limit: Optional[int] = None) -> Dict:
  """Accuracy of one RM on one task's split, with baselines fitted on the task's train split."""
  task = data_pipeline.get_task(task_name)
  examples = list(data_pipeline.text_examples(task, split, limit))
  train = list(data_pipeline.text_examples(task, "train", limit))
  if not examples:
    raise UserError(f"task {task_name} has no {split} examples")
  target = examples[0].get("lang", task_name)
  inputs = [e["inputs"] for e in examples]
  if "label" in examples[0]:
    labels = np.array([e["label"] > 0.5 for e in examples])
    r = scorer.score_texts(vocab, inputs, [e["targets"] for e in examples])
    correct = (r > 0) == labels
    train_labels = np.array([e["label"] > 0.5 for e in train])
    majority = float(np.mean(labels == (train_labels.mean() >= 0.5)))
    direction, cut = fit_length_threshold(_lengths(vocab, [e["targets"] for e in train]),
                                          train_labels)
    length_pred = direction * (_lengths(vocab, [e["targets"] for e in examples]) - cut) > 0
    length_baseline = float(np.mean(length_pred == labels))
  else:
    r_chosen = scorer.score_texts(vocab, inputs, [e["chosen"] for e in examples])
    r_rejected = scorer.score_texts(vocab, inputs, [e["rejected"] for e in examples])
    correct = r_chosen > r_rejected
    majority = None  # a pair has no majority class
    diff_train = (_lengths(vocab, [e["chosen"] for e in train]) -
                  _lengths(vocab, [e["rejected"] for e in train]))
    direction = 1 if np.mean(diff_train > 0) >= np.mean(diff_train < 0) else -1
    diff = direction * (_lengths(vocab, [e["chosen"] for e in examples]) -
                        _lengths(vocab, [e["rejected"] for e in examples]))
    length_baseline = float(np.mean(np.where(diff == 0, 0.5, diff > 0)))
  accuracy, low, high = stats.binomial_ci(int(correct.sum()), len(correct))
  return {"task": task_name, "target": target, "split": split, "n": len(correct),
          "accuracy": float(accuracy), "ci_low": float(low), "ci_high": float(high),
          "majority": majority, "length_baseline": length_baseline}


def evaluate(rm_specs: Sequence[str], tasks: Sequence[str], vocab, split: str = "validation",
             limit: Optional[int] = None, batch_size: int = 64) -> List[Dict]:
  entries = []
  for spec in rm_specs:
    source, path = source_language(spec)
    scorer = Scorer(path, batch_size, reward=True)
    for task_name in tasks:
      entry = evaluate_task(scorer, vocab, task_name, split, limit)
      entries.append({"source": source, "checkpoint": path, **entry})
      print(f"RM {source} on {task_name}: accuracy {entry['accuracy']:.3f} "
            f"[{entry['ci_low']:.3f}, {entry['ci_high']:.3f}] (n={entry['n']}), majority "
            f"{entry['majority']}, length {entry['length_baseline']:.3f}", flush=True)
  return entries


def write(entries: List[Dict], output: str) -> None:
  out = pathlib.Path(output)
  matrix: Dict[str, Dict[str, float]] = {}
  for e in entries:
    matrix.setdefault(e["source"], {})[e["target"]] = e["accuracy"]
  fileio.write_text(out, json.dumps({"rm_accuracy": entries, "matrix": matrix}, indent=2))
  fields = ["source", "target", "task", "split", "n", "accuracy", "ci_low", "ci_high", "majority",
            "length_baseline", "checkpoint"]
  with fileio.open_for_write(out.with_suffix(".csv"), newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows({k: e.get(k) for k in fields} for e in entries)


def add_arguments(parser):
  parser.add_argument("--checkpoint", action="append", required=True,
                      help="reward model, as LANG=PATH or PATH (language from its config.gin); "
                           "repeatable")
  parser.add_argument("--task", action="append", required=True, help="RM task; repeatable")
  parser.add_argument("--data_dir", help="data directory (default: $XLALIGN_DATA_DIR)")
  parser.add_argument("--vocab", help="sentencepiece model (default: DATA_DIR/spm)")
  parser.add_argument("--split", default="validation")
  parser.add_argument("--limit", type=int, help="at most this many examples per split")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--output", required=True, help="JSON file; a .csv is written beside it")


def run(args):
  import xlalign_tasks
  xlalign_tasks.configure(data_dir=args.data_dir, vocab_path=args.vocab)
  entries = evaluate(args.checkpoint, args.task, xlalign_tasks.VOCABULARY, args.split, args.limit,
                     args.batch_size)
  write(entries, args.output)
  print(f"wrote {len(entries)} accuracies -> {args.output}")
