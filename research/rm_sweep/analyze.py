"""Best-of-n under the oracle for each run and step of train_sweep.py's results.

  python research/rm_sweep/analyze.py CANDIDATES.jsonl WORLD_DATA_DIR sweep_results.json...
      [--lang es]

Per run and step: validation accuracy; best-of-n choice minus candidate 0 (the SFT baseline the
demo's win rates use) and minus the prompt's mean (a random candidate), each with a 95% normal
interval over prompts; the within-prompt rank correlation of reward and oracle quality; and a
within-prompt regression of reward on the oracle's counts of correct, wrong and repeated facts,
extras and garbage sentences (what the RM rewards on the policy's own samples). First, the same
for the oracle's own choice, for the candidate the policy itself finds likeliest (when the
candidates file has log-probabilities) and what the candidates' quality differences consist of.
"""
import argparse
import json

import numpy as np

from xlalign_jax import judging
from xlalign_jax.synthetic.oracle import Oracle

COUNTS = ("correct", "wrong", "repeats", "extras", "garbage")


def mean_ci(values) -> str:
  values = np.asarray(values)
  return f"{values.mean():+.3f}±{1.96 * values.std() / np.sqrt(len(values)):.3f}"


def read_candidates(path):
  """candidates.py's rows: {"inputs", "candidates", "log_probs"}."""
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("candidates")
  parser.add_argument("world_data_dir")
  parser.add_argument("results", nargs="+")
  parser.add_argument("--lang", default="es")
  args = parser.parse_args()
  oracle = Oracle.from_data_dir(args.world_data_dir)
  rows = read_candidates(args.candidates)
  assessed = [[oracle.assess(args.lang, r["inputs"], c) for c in r["candidates"]] for r in rows]
  quality = np.array([[a.quality for a in prompt] for prompt in assessed])
  counts = np.array([[[getattr(a, k) for k in COUNTS] for a in prompt] for prompt in assessed],
                    float)
  centred = (counts - counts.mean(1, keepdims=True)).reshape(-1, len(COUNTS))
  q_centred = (quality - quality.mean(1, keepdims=True)).ravel()
  print(f"{len(rows)} prompts x {quality.shape[1]} candidates; mean quality {quality.mean():.3f}; "
        f"oracle's choice minus mean {mean_ci(judging.bon_oracle_ceiling(list(quality)))}")
  print("within-prompt correlation of quality with: " + ", ".join(
      f"{k} {np.corrcoef(q_centred, centred[:, i])[0, 1]:+.2f}" for i, k in enumerate(COUNTS)))
  if all("log_probs" in r for r in rows):  # candidates.py writes them
    likeliest = np.array([r["log_probs"] for r in rows]).argmax(1)
    print("the policy's likeliest candidate minus mean "
          f"{mean_ci(judging.bon_oracle_gain(list(quality), likeliest))}")
  for path in args.results:
    with open(path, encoding="utf-8") as f:
      records = json.load(f)
    for record in records:
      for step, _, accuracy in record["val"]:
        reward = np.array(record["bon"][str(step)]).reshape(quality.shape)
        chosen = reward.argmax(1)
        picked = quality[np.arange(len(quality)), chosen]
        corr = judging.within_prompt_rank_correlation(list(reward), list(quality))
        coef = np.linalg.lstsq(centred, (reward - reward.mean(1, keepdims=True)).ravel(),
                               rcond=None)[0]
        print(f"{record['name']:14s} {step:5d} acc {accuracy:.3f}  "
              f"best-cand0 {mean_ci(picked - quality[:, 0])}  "
              f"best-mean {mean_ci(picked - quality.mean(1))}  rank corr {corr.mean():+.3f} | "
              + " ".join(f"{k} {c:+.2f}" for k, c in zip(COUNTS, coef)))


if __name__ == "__main__":
  main()
