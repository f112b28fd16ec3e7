"""The best any reward model trained on the raters' labels can do: best-of-n with the raters' own
P(question 6 = Yes) as the reward, under the oracle.

  python research/rm_sweep/rater_ceiling.py CANDIDATES.jsonl WORLD_DATA_DIR [--lang es]
      [--noise 0.5] [--miss_wrong_facts 0.5] [--miss_verbosity 0.5] [--artifact_bias 0.3]

A pointwise RM fits P(Yes | summary); with unlimited data and capacity it becomes that probability,
which `synthetic/raters.py` fixes analytically from the oracle's assessment: an average over the
raters' blind spots (missed wrong facts, missed verbosity) of a normal tail around their threshold
(the Unsure band and the early "No" of unreadable summaries left out). Whatever order it gives the
candidates is what the raters' labels teach; the oracle's own choice is the other ceiling.
"""
import argparse
import itertools
import math

import numpy as np

from xlalign_jax import judging
from xlalign_jax.synthetic import oracle as oracle_lib
from xlalign_jax.synthetic import raters

from analyze import mean_ci, read_candidates


def p_yes(a: oracle_lib.Assessment, noise: float, miss_wrong: float, miss_verbosity: float,
          artifact_bias: float) -> float:
  if a.wrong_language:
    return 0.0
  total = 0.0
  for missed_wrong, missed_extras in itertools.product((True, False), repeat=2):
    weight = ((miss_wrong if missed_wrong else 1 - miss_wrong)
              * (miss_verbosity if missed_extras else 1 - miss_verbosity))
    seen = oracle_lib.score(a.base, wrong=0 if missed_wrong else a.wrong, repeats=a.repeats,
                            extras=0 if missed_extras else a.extras, garbage=a.garbage,
                            agreement_errors=a.agreement_errors)
    seen += artifact_bias * a.artifact
    z = (seen - raters.THRESHOLD) / max(noise, 1e-9)
    total += weight * 0.5 * math.erfc(-z / math.sqrt(2))
  return total


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("candidates")
  parser.add_argument("world_data_dir")
  parser.add_argument("--lang", default="es")
  parser.add_argument("--noise", type=float, default=raters.NOISE)
  parser.add_argument("--miss_wrong_facts", type=float, default=raters.MISS_WRONG_FACTS)
  parser.add_argument("--miss_verbosity", type=float, default=raters.MISS_VERBOSITY)
  parser.add_argument("--artifact_bias", type=float, default=raters.ARTIFACT_BIAS)
  args = parser.parse_args()
  oracle = oracle_lib.Oracle.from_data_dir(args.world_data_dir)
  rows = read_candidates(args.candidates)
  assessed = [[oracle.assess(args.lang, r["inputs"], c) for c in r["candidates"]] for r in rows]
  quality = np.array([[a.quality for a in prompt] for prompt in assessed])
  reward = np.array([[p_yes(a, args.noise, args.miss_wrong_facts, args.miss_verbosity,
                            args.artifact_bias) for a in prompt] for prompt in assessed])
  # Ties (several candidates at P(Yes) ~ 1) are broken at random, as a fitted RM's noise would.
  rng = np.random.default_rng(0)
  chosen = (reward + 1e-9 * rng.random(reward.shape)).argmax(1)
  corr = judging.within_prompt_rank_correlation(list(reward), list(quality))
  print(f"{len(rows)} prompts x {quality.shape[1]}: oracle's choice minus mean "
        f"{np.mean(judging.bon_oracle_ceiling(list(quality))):+.3f}; raters' P(Yes) choice minus "
        f"mean {mean_ci(judging.bon_oracle_gain(list(quality), chosen))}; "
        f"rank corr {np.nanmean(corr):+.3f}")


if __name__ == "__main__":
  main()
