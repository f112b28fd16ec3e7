"""`xlalign bon`: best-of-n reranking by a reward model of any language (usage and how:
`best_of_n`). The flags live here so that `--help` answers without importing jax and TensorFlow."""
from xlalign_jax import generate_cli, gin_utils

IMPORTS = ("xlalign_tasks", "xlalign_jax.best_of_n")


def add_arguments(parser):
  parser.add_argument("--policy", required=True, help="policy (SFT) checkpoint")
  parser.add_argument("--rm", required=True, help="reward-model checkpoint (any language)")
  parser.add_argument("--rm_vocab", help="the RM's sentencepiece model if it differs from the "
                      "policy's")
  parser.add_argument("--rm_batch_size", type=gin_utils.positive_int, default=64)
  generate_cli.add_sampling_arguments(parser, n_default=64, temperature_default=1.0)


def run(args):
  import xlalign_tasks  # pylint: disable=g-import-not-at-top  (IMPORTS)
  from xlalign_jax import best_of_n, generation  # pylint: disable=g-import-not-at-top  (IMPORTS)
  from xlalign_jax.score import Scorer, load_vocabulary  # pylint: disable=g-import-not-at-top

  mesh_config = gin_utils.mesh_config_from_args(args)
  xlalign_tasks.configure(data_dir=args.data_dir, vocab_path=args.vocab)
  sampling = generate_cli.sampling_config(args)
  examples = generation.prompt_examples(args.task, args.split, args.limit)
  policy_vocab = xlalign_tasks.VOCABULARY
  rm_vocab = load_vocabulary(args.rm_vocab) if args.rm_vocab else policy_vocab
  # Load both models and check vocabularies and memory before any sampling starts.
  scorer = Scorer(args.rm, args.rm_batch_size, reward=True, mesh_config=mesh_config)
  policy = generation.Policy(args.policy, args.batch_size, mesh_config)
  policy.check(policy_vocab, sampling, args.max_input_length)
  results = best_of_n.rerank(policy, scorer, policy_vocab, rm_vocab,
                             [e["inputs"] for e in examples], sampling, args.seed,
                             args.max_input_length)
  generation.write_jsonl(args.output, (
      {"id": e.get("id"), "lang": e.get("lang"), **r} for e, r in zip(examples, results)))
  print(f"best-of-{sampling.num_samples} for {len(results)} prompts -> {args.output} "
        f"(KL bound {best_of_n.kl_bound(sampling.num_samples):.3f} nats)")
