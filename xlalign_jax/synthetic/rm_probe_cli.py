"""`xlalign rm-probe --checkpoint RUN --data_dir WORLD --lang LANG --output probe.json`: which
mistakes a reward model (or, with `--loglik`, a model's likelihood) notices (what and how:
`rm_probe`). The flags live here so that `--help` answers without importing jax."""
import json

from xlalign_jax import gin_utils
from xlalign_jax.errors import UserError

IMPORTS = ("xlalign_jax.synthetic.rm_probe",)


def add_arguments(parser):
  parser.add_argument("--checkpoint", required=True,
                      help="reward-model run directory (any model's with --loglik)")
  parser.add_argument("--loglik", action="store_true",
                      help="score by the model's log-likelihood of the summary instead of a "
                           "reward head (e.g. the SFT model an RM starts from)")
  parser.add_argument("--data_dir", required=True, help="the synthetic world's directory")
  parser.add_argument("--lang", required=True, help="language of the probe articles")
  parser.add_argument("--articles", type=int, default=300)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", required=True, help="JSON file to write")
  gin_utils.add_mesh_arguments(parser)


def run(args):
  # pylint: disable=g-import-not-at-top  (IMPORTS)
  from xlalign_jax import fileio
  from xlalign_jax.score import load_vocabulary
  from xlalign_jax.synthetic import rm_probe
  from xlalign_jax.synthetic.oracle import Oracle

  mesh_config = gin_utils.mesh_config_from_args(args)
  if args.articles < 1:
    raise UserError(f"--articles must be at least 1, got {args.articles}")
  world = Oracle.from_data_dir(args.data_dir).world
  vocab = load_vocabulary(f"{args.data_dir}/spm/sentencepiece.model")
  source = "lm" if args.loglik else "rm"
  rows = rm_probe.probe_grid({source: args.checkpoint}, world, [args.lang], vocab, args.articles,
                             args.seed, mesh_config, reward=not args.loglik)
  fileio.write_text(args.output, json.dumps(
      {"checkpoint": args.checkpoint, "lang": args.lang, "articles": args.articles,
       "seed": args.seed, "score": "loglik" if args.loglik else "reward", "rm_probe": rows},
      indent=2) + "\n")
  for row in rows:
    print(f"{row['kind']:22s} prefers the reference {row['prefers_reference']:.3f} "
          f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]  n={row['n']}")
