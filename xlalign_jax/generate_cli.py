"""`xlalign generate`: a policy's outputs for a prompts task (usage and how: `generation`). The
flags live here so that `--help` answers without importing jax and TensorFlow; `xlalign bon`
shares the sampling ones."""
from xlalign_jax import gin_utils

IMPORTS = ("xlalign_tasks", "xlalign_jax.generation")


def add_sampling_arguments(parser, n_default: int, temperature_default: float) -> None:
  parser.add_argument("--task", required=True,
                      help="prompts task, e.g. xlalign_v1.seahorse.es.prompts")
  parser.add_argument("--data_dir", help="data directory (default: $XLALIGN_DATA_DIR)")
  parser.add_argument("--vocab", help="policy sentencepiece model (default: DATA_DIR/spm)")
  parser.add_argument("--split", default="validation")
  parser.add_argument("--limit", type=int, help="at most this many prompts")
  count = gin_utils.positive_int
  parser.add_argument("--n", type=count, default=n_default, help="samples per prompt")
  parser.add_argument("--temperature", type=float, default=temperature_default, help="0 = greedy")
  parser.add_argument("--top_k", type=int, default=0)
  parser.add_argument("--top_p", type=float, default=1.0)
  parser.add_argument("--max_decode_length", type=count, default=64)
  parser.add_argument("--max_input_length", type=count, default=512)
  parser.add_argument("--batch_size", type=count, default=8, help="prompts per sampling batch")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", required=True, help="JSONL output")
  gin_utils.add_mesh_arguments(parser)


def sampling_config(args):
  from xlalign_jax.decoding import SamplingConfig  # pylint: disable=g-import-not-at-top
  return SamplingConfig(args.n, args.max_decode_length, args.temperature, args.top_k, args.top_p)


def add_arguments(parser):
  parser.add_argument("--checkpoint", required=True, help="policy checkpoint (SFT or PPO run)")
  add_sampling_arguments(parser, n_default=1, temperature_default=0.0)


def run(args):
  import xlalign_tasks  # pylint: disable=g-import-not-at-top  (IMPORTS)
  from xlalign_jax import generation  # pylint: disable=g-import-not-at-top  (IMPORTS)

  mesh_config = gin_utils.mesh_config_from_args(args)
  xlalign_tasks.configure(data_dir=args.data_dir, vocab_path=args.vocab)
  sampling = sampling_config(args)
  examples = generation.prompt_examples(args.task, args.split, args.limit)
  policy = generation.Policy(args.checkpoint, args.batch_size, mesh_config)
  outputs = policy.generate(xlalign_tasks.VOCABULARY, [e["inputs"] for e in examples], sampling,
                            args.seed, args.max_input_length)
  generation.write_jsonl(args.output, (
      {"id": e.get("id"), "lang": e.get("lang"), "inputs": e["inputs"], "output": outs[0]["text"],
       **({"samples": [o["text"] for o in outs]} if len(outs) > 1 else {})}
      for e, outs in zip(examples, outputs)))
  print(f"wrote {len(examples)} outputs -> {args.output}")
