"""Best-of-n candidates of an SFT policy for a target language's test prompts, as `xlalign bon`
samples them (its default temperature and length of the demo), with the policy's log-probability
of each.

  python research/rm_sweep/candidates.py DATA_DIR SFT_CHECKPOINT OUT.jsonl [--lang es]
      [--prompts 300] [--n 16] [--temperature 0.7] [--seed 7]
"""
import argparse

from xlalign_jax import decoding, generation, partitioning


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("data_dir")
  parser.add_argument("sft")
  parser.add_argument("out")
  parser.add_argument("--lang", default="es")
  parser.add_argument("--prompts", type=int, default=300)
  parser.add_argument("--n", type=int, default=16)
  parser.add_argument("--temperature", type=float, default=0.7)
  parser.add_argument("--seed", type=int, default=7)
  args = parser.parse_args()
  import xlalign_tasks
  xlalign_tasks.configure(data_dir=args.data_dir)
  prompts = generation.prompt_examples(f"xlalign_v1.seahorse.{args.lang}.prompts", "test",
                                       args.prompts)
  policy = generation.Policy(args.sft, 16, partitioning.MeshConfig())
  samples = policy.generate(xlalign_tasks.VOCABULARY, [p["inputs"] for p in prompts],
                            decoding.SamplingConfig(args.n, 40, args.temperature), args.seed, 80)
  generation.write_jsonl(args.out, [{"inputs": p["inputs"], "candidates": [o["text"] for o in s],
                                     "log_probs": [o["log_prob"] for o in s]}
                                    for p, s in zip(prompts, samples)])


if __name__ == "__main__":
  main()
