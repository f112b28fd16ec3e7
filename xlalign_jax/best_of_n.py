"""Best-of-n reranking: n samples per prompt from the policy, scored by a reward model of any
language, the argmax kept.

  xlalign bon --policy SFT_ES --rm RM_EN --task xlalign_v1.seahorse.es.prompts --data_dir DIR \
      --n 64 --output bon.jsonl

Each output line keeps the prompt, every candidate with its reward, the chosen index and the
analytical KL bound of best-of-n to the policy, log n - (n-1)/n. The policy and the RM may use
different vocabularies: candidates are detokenized and re-tokenized with the RM's (`--rm_vocab`).
The command's flags are in `bon_cli`.
"""
import math
from typing import List, Sequence

import numpy as np

from xlalign_jax import generation
from xlalign_jax.decoding import SamplingConfig
from xlalign_jax.score import Scorer


def kl_bound(n: int) -> float:
  """Upper bound on KL(best-of-n || policy) (Stiennon et al. 2020; Beirami et al. 2024)."""
  return math.log(n) - (n - 1) / n


def rerank(policy: generation.Policy, scorer: Scorer, policy_vocab, rm_vocab,
           prompts: Sequence[str], sampling: SamplingConfig, seed: int = 0,
           max_input_length: int = 512) -> List[dict]:
  """For each prompt: candidates, their rewards, and the index of the best."""
  samples = policy.generate(policy_vocab, prompts, sampling, seed, max_input_length)
  flat_prompts = [p for p, outs in zip(prompts, samples) for _ in outs]
  flat_outputs = [o["text"] for outs in samples for o in outs]
  rewards = scorer.score_texts(rm_vocab, flat_prompts, flat_outputs, progress=True)
  rewards = rewards.reshape(len(prompts), sampling.num_samples)
  results = []
  for prompt, outs, r in zip(prompts, samples, rewards):
    best = int(np.argmax(r))
    results.append({"inputs": prompt, "candidates": [o["text"] for o in outs],
                    "rewards": [float(x) for x in r], "chosen": best,
                    "output": outs[best]["text"], "kl_bound": kl_bound(sampling.num_samples)})
  return results
