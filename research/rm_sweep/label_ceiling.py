"""The highest validation accuracy any reward model can reach on a synthetic world's rated rows.

  python research/rm_sweep/label_ceiling.py WORLD_DATA_DIR [--langs en,es,ru] [--split validation]

A row's label is the raters' question 6, drawn from P(Yes | the summary's oracle assessment)
(`rater_ceiling.p_yes`, the raters' blind spots and noise). No model can predict a draw better than
by that probability, so thresholding it at 0.5 is the Bayes classifier: its accuracy on the rows
("Bayes, on these labels") and the accuracy it is expected to have ("expected", the mean of
max(p, 1 - p)) bound what `xlalign rm-eval` can report, beside the majority baseline it must beat.
Rows whose question 1 is No, or whose question 6 is Unsure, have no label and are not read.
"""
import argparse
import os

import numpy as np

from xlalign_jax.data import seahorse
from xlalign_jax.synthetic import formats
from xlalign_jax.synthetic import oracle as oracle_lib
from xlalign_jax.synthetic import raters

from rater_ceiling import p_yes


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("world_data_dir")
  parser.add_argument("--langs", default="en,es,ru")
  parser.add_argument("--split", default="validation")
  args = parser.parse_args()
  oracle = oracle_lib.Oracle.from_data_dir(args.world_data_dir)
  split = seahorse.load(os.path.join(args.world_data_dir, "seahorse"), args.split)
  print("lang   rows   majority   Bayes, on these labels   expected")
  for lang in args.langs.split(","):
    rows = split.rated(lang)
    labels = np.array([rating.label for rating, _ in rows])
    p = np.array([p_yes(oracle.assess(lang, formats.format_summarization_input(lang, article.text),
                                      rating.summary),
                        raters.NOISE, raters.MISS_WRONG_FACTS, raters.MISS_VERBOSITY,
                        raters.ARTIFACT_BIAS) for rating, article in rows])
    majority = max(labels.mean(), 1 - labels.mean())
    print(f"{lang:<6} {len(rows):>4}   {majority:.3f}      {np.mean((p > 0.5) == labels):.3f}"
          f"                    {np.mean(np.maximum(p, 1 - p)):.3f}")


if __name__ == "__main__":
  main()
