"""How accurate can a reward model be on a synthetic world's rated rows, with and without checking
facts against the article?

  python research/rm_sweep/label_ceiling.py WORLD_DATA_DIR [--langs en,es,ru] [--split validation]

A row's label is the raters' question 6, drawn from P(Yes | the summary's oracle assessment)
(`rater_ceiling.p_yes`, the raters' blind spots and noise). No model can predict a draw better than
by that probability, so thresholding it at 0.5 is the Bayes classifier: its accuracy on the rows
and the accuracy it is expected to have (the mean of max(p, 1 - p)) bound what `xlalign rm-eval`
can report. Beside it, a logistic regression fitted on the train rows to what a reader sees
without checking any fact against the article ("fact-blind": fact sentences counted whether right
or wrong, and the other mistakes of the assessment), and the same with the fact counts and
coverage that do need the check. Rows whose question 1 is No, or whose question 6 is Unsure, have
no label and are not read.
"""
import argparse
import os

import numpy as np

from xlalign_jax import stats
from xlalign_jax.data import seahorse
from xlalign_jax.synthetic import formats
from xlalign_jax.synthetic import oracle as oracle_lib
from xlalign_jax.synthetic import raters

from rater_ceiling import p_yes
from train_sweep import logistic_fit


def features(a: oracle_lib.Assessment, fact_blind: bool) -> list:
  seen = [1.0, a.wrong_language, a.garbage, a.repeats, a.extras, a.agreement_errors, a.artifact,
          a.sentences]
  facts = a.correct + a.wrong
  return seen + ([facts, facts ** 2] if fact_blind
                 else [a.correct, a.wrong, a.coverage, a.correct ** 2])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("world_data_dir")
  parser.add_argument("--langs", default="en,es,ru")
  parser.add_argument("--split", default="validation")
  args = parser.parse_args()
  oracle = oracle_lib.Oracle.from_data_dir(args.world_data_dir)
  splits = {s: seahorse.load(os.path.join(args.world_data_dir, "seahorse"), s)
            for s in ("train", args.split)}

  def assessed(split, lang):
    rows = splits[split].rated(lang)
    labels = np.array([rating.label for rating, _ in rows])
    return labels, [oracle.assess(lang, formats.format_summarization_input(lang, article.text),
                                  rating.summary) for rating, article in rows]

  print("lang  rows  majority  accuracy (AUC): fact-blind features | with fact checks | Bayes "
        "(expected accuracy)")
  for lang in args.langs.split(","):
    train_labels, train = assessed("train", lang)
    labels, rows = assessed(args.split, lang)
    cells = []
    for fact_blind in (True, False):
      w = logistic_fit(np.array([features(a, fact_blind) for a in train], float), train_labels)
      p = 1 / (1 + np.exp(-np.array([features(a, fact_blind) for a in rows], float) @ w))
      cells.append(f"{np.mean((p > 0.5) == labels):.3f} ({stats.roc_auc(p, labels):.3f})")
    p = np.array([p_yes(a, raters.NOISE, raters.MISS_WRONG_FACTS, raters.MISS_VERBOSITY,
                        raters.ARTIFACT_BIAS) for a in rows])
    cells.append(f"{np.mean((p > 0.5) == labels):.3f} ({stats.roc_auc(p, labels):.3f}; "
                 f"{np.mean(np.maximum(p, 1 - p)):.3f})")
    majority = max(labels.mean(), 1 - labels.mean())
    print(f"{lang:<5} {len(rows):>4}  {majority:.3f}     " + " | ".join(cells), flush=True)


if __name__ == "__main__":
  main()
