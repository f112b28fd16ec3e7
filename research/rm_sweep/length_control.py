"""Does taking length out of a grid's RM rewards make best-of-n pick better than chance?

  python research/rm_sweep/length_control.py WORKDIR

For every (source RM, target) pair of a finished grid (its `stages/bon_TARGET/candidates.jsonl`):
the within-prompt least-squares slope of the reward on the oracle's counts of correct facts, wrong
facts, repeated facts and garbage sentences (rewards and counts centred per prompt), and the
oracle quality of the candidate with the highest reward - lam x (its number of words) minus the
prompt's mean, with a 95% normal interval over prompts, for a few lam (lam 0: plain best-of-n).
"""
import argparse
import json
import pathlib

import numpy as np

from xlalign_jax.synthetic.oracle import Oracle

COUNTS = ("correct", "wrong", "repeats", "garbage")
LAMBDAS = (0.0, 0.01, 0.02, 0.05, 0.1)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdir")
  workdir = pathlib.Path(parser.parse_args().workdir)
  oracle = Oracle.from_data_dir(str(workdir / "data"))
  for bon in sorted((workdir / "stages").glob("bon_*")):
    target = bon.name[len("bon_"):]
    rows = [json.loads(line) for line in open(bon / "candidates.jsonl", encoding="utf-8")]
    assessed = [[oracle.assess(target, r["inputs"], c) for c in r["candidates"]] for r in rows]
    quality = np.array([[a.quality for a in row] for row in assessed])
    counts = np.stack([np.array([[getattr(a, k) for a in row] for row in assessed], float)
                       for k in COUNTS], -1)
    counts -= counts.mean(1, keepdims=True)
    words = np.array([[len(c.split()) for c in r["candidates"]] for r in rows], float)
    for source in rows[0]["rewards"]:
      reward = np.array([r["rewards"][source] for r in rows])
      slope, *_ = np.linalg.lstsq(counts.reshape(-1, len(COUNTS)),
                                  (reward - reward.mean(1, keepdims=True)).reshape(-1), rcond=None)
      gains = []
      for lam in LAMBDAS:
        pick = np.argmax(reward - lam * words, 1)
        gain = quality[np.arange(len(rows)), pick] - quality.mean(1)
        half = 1.96 * gain.std(ddof=1) / np.sqrt(len(gain))
        gains.append(f"lam {lam:g}: {gain.mean():+.3f} +- {half:.3f}")
      print(f"{source} -> {target}: slope " +
            ", ".join(f"{k} {s:+.3f}" for k, s in zip(COUNTS, slope)) + " | " + "; ".join(gains),
            flush=True)


if __name__ == "__main__":
  main()
