"""Does an SFT model of one language know which of another language's candidates are good?

  python research/rm_sweep/likelihood.py WORKDIR CANDIDATES.jsonl [--lang es] [--sources es,en,ru]

Reranks CANDIDATES.jsonl (`candidates.py`: samples of the `--lang` SFT policy) by their
log-likelihood under the SFT model of each source language in WORKDIR (`xlalign demo --workdir
WORKDIR`; the same sum over target tokens as `xlalign score`) and prints, under the oracle, the
choice's quality minus the prompt's mean, beside the oracle's own choice. The target language's own
SFT model ranks its samples well; a source-language SFT model that does too has carried its
summarization skill across languages, which a source-language RM built on it needs before it can
judge the target language.
"""
import argparse

import numpy as np

from xlalign_jax import judging, partitioning
from xlalign_jax.score import Scorer
from xlalign_jax.synthetic.oracle import Oracle

from analyze import mean_ci, read_candidates


def setup(description, extra=()):
  """The command line of this script, token_likelihood.py and pmi.py (`extra`: more options as
  (flag, type, default)): (args, candidate rows, oracle, the candidates' oracle quality
  [prompts, n])."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("workdir")
  parser.add_argument("candidates")
  parser.add_argument("--lang", default="es")
  parser.add_argument("--sources", default="es,en,ru")
  for flag, kind, default in extra:
    parser.add_argument(flag, type=kind, default=default)
  args = parser.parse_args()
  import xlalign_tasks
  xlalign_tasks.configure(data_dir=f"{args.workdir}/data")
  rows = read_candidates(args.candidates)
  oracle = Oracle.from_data_dir(f"{args.workdir}/data")
  quality = np.array([[oracle.quality(args.lang, r["inputs"], c) for c in r["candidates"]]
                      for r in rows])
  return args, rows, oracle, quality


def main():
  args, rows, _, quality = setup(__doc__.split("\n")[0])
  import xlalign_tasks

  def report(name, choice):
    print(f"{name}: choice minus mean {mean_ci(judging.bon_oracle_gain(list(quality), choice))}")

  print(f"{len(rows)} prompts x {quality.shape[1]} {args.lang} candidates, mean quality "
        f"{quality.mean():.3f}")
  report("oracle", quality.argmax(1))
  inputs = [r["inputs"] for r in rows for _ in r["candidates"]]
  outputs = [c for r in rows for c in r["candidates"]]
  for source in args.sources.split(","):
    scorer = Scorer(f"{args.workdir}/stages/sft_{source}/model", 64,
                    mesh_config=partitioning.MeshConfig())
    loglik = np.asarray(scorer.score_texts(xlalign_tasks.VOCABULARY, inputs, outputs))
    report(f"sft_{source} log-likelihood", loglik.reshape(quality.shape).argmax(1))


if __name__ == "__main__":
  main()
