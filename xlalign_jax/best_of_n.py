"""Best-of-n reranking: n samples per prompt from the policy, scored by a reward model of any
language, the argmax kept.

  xlalign bon --policy SFT_ES --rm RM_EN --task xlalign_v1.seahorse.es.prompts --data_dir DIR \
      --n 64 --output bon.jsonl

Each output line keeps the prompt, every candidate with its reward, the chosen index and the
analytical KL bound of best-of-n to the policy, log n - (n-1)/n. The policy and the RM may use
different vocabularies: candidates are detokenized and re-tokenized with the RM's (`--rm_vocab`).
"""
import math
from typing import List, Sequence

import numpy as np

from xlalign_jax import generation, gin_utils
from xlalign_jax.decoding import SamplingConfig
from xlalign_jax.score import Scorer, load_vocabulary


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


def add_arguments(parser):
  parser.add_argument("--policy", required=True, help="policy (SFT) checkpoint")
  parser.add_argument("--rm", required=True, help="reward-model checkpoint (any language)")
  parser.add_argument("--rm_vocab", help="the RM's sentencepiece model if it differs from the "
                      "policy's")
  parser.add_argument("--rm_batch_size", type=gin_utils.positive_int, default=64)
  generation.add_sampling_arguments(parser, n_default=64, temperature_default=1.0)


def run(args):
  mesh_config = gin_utils.mesh_config_from_args(args)
  import xlalign_tasks
  xlalign_tasks.configure(data_dir=args.data_dir, vocab_path=args.vocab)
  sampling = generation.sampling_config(args)
  examples = generation.prompt_examples(args.task, args.split, args.limit)
  policy_vocab = xlalign_tasks.VOCABULARY
  rm_vocab = load_vocabulary(args.rm_vocab) if args.rm_vocab else policy_vocab
  # Load both models and check vocabularies and memory before any sampling starts.
  scorer = Scorer(args.rm, args.rm_batch_size, reward=True, mesh_config=mesh_config)
  policy = generation.Policy(args.policy, args.batch_size, mesh_config)
  policy.check(policy_vocab, sampling, args.max_input_length)
  results = rerank(policy, scorer, policy_vocab, rm_vocab, [e["inputs"] for e in examples],
                   sampling, args.seed, args.max_input_length)
  generation.write_jsonl(args.output, (
      {"id": e.get("id"), "lang": e.get("lang"), **r} for e, r in zip(examples, results)))
  print(f"best-of-{sampling.num_samples} for {len(results)} prompts -> {args.output} "
        f"(KL bound {kl_bound(sampling.num_samples):.3f} nats)")
