"""`xlalign compare WORKDIR [WORKDIR ...] --output DIR [--judge oracle]`: finished grids side by
side (what it writes: `compare`). The flags live here so that `--help` answers without importing
jax and TensorFlow."""
IMPORTS = ("xlalign_jax.compare",)


def add_arguments(parser):
  parser.add_argument("workdirs", nargs="+", help="workdirs of finished grids (xlalign run/demo)")
  parser.add_argument("--output", required=True, help="directory for compare.md/.csv/.json/.png")
  parser.add_argument("--judge", default="oracle",
                      help="whose win rates: oracle, sim_llm, rm:LANG, http:MODEL, or "
                           "\"the target's RM\" (default: oracle)")


def run(args):
  from xlalign_jax import compare  # pylint: disable=g-import-not-at-top  (IMPORTS)
  compare.write_comparison(args.workdirs, args.output, args.judge)
