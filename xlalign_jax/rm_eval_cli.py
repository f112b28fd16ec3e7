"""`xlalign rm-eval --checkpoint [LANG=]RM ... --task TASK ... --output OUT.json`: reward-model
accuracy with the paper's baselines (what and how: `rm_eval`). The flags live here so that
`--help` answers without importing jax and TensorFlow."""
from xlalign_jax import gin_utils

IMPORTS = ("xlalign_tasks", "xlalign_jax.rm_eval")


def add_arguments(parser):
  parser.add_argument("--checkpoint", action="append", required=True,
                      help="reward model, as LANG=PATH or PATH (language from its config.gin); "
                           "repeatable")
  parser.add_argument("--task", action="append", required=True, help="RM task; repeatable")
  parser.add_argument("--data_dir", help="data directory (default: $XLALIGN_DATA_DIR)")
  parser.add_argument("--vocab", help="sentencepiece model (default: DATA_DIR/spm)")
  parser.add_argument("--split", default="validation")
  parser.add_argument("--limit", type=int, help="at most this many examples per split")
  parser.add_argument("--batch_size", type=gin_utils.positive_int, default=64)
  parser.add_argument("--output", required=True, help="JSON file; a .csv is written beside it")
  gin_utils.add_mesh_arguments(parser)


def run(args):
  import xlalign_tasks  # pylint: disable=g-import-not-at-top  (IMPORTS)
  from xlalign_jax import rm_eval  # pylint: disable=g-import-not-at-top  (IMPORTS)

  mesh_config = gin_utils.mesh_config_from_args(args)
  xlalign_tasks.configure(data_dir=args.data_dir, vocab_path=args.vocab)
  entries = rm_eval.evaluate(args.checkpoint, args.task, xlalign_tasks.VOCABULARY, args.split,
                             args.limit, args.batch_size, mesh_config)
  rm_eval.write(entries, args.output)
  print(f"wrote {len(entries)} accuracies -> {args.output}")
