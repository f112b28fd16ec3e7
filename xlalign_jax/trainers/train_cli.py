"""`xlalign train --gin_file=EXPERIMENT.gin [--gin_file=...] [--gin.KEY=VALUE ...]`.

The experiment's run file binds `xlalign.train.trainer` to a trainer (e.g. `@sft.train`), which
reads everything else from gin.
"""
import gin

from xlalign_jax import gin_utils

ACCEPTS_GIN_FLAGS = True
# The seqio tasks and the trainers (registering their gin configurables): not for `--help`.
IMPORTS = ("xlalign_tasks", "xlalign_jax.trainers.ppo", "xlalign_jax.trainers.reward",
           "xlalign_jax.trainers.sft")


@gin.configurable(module="xlalign")
def train(trainer=gin.REQUIRED):
  return trainer()


def add_arguments(parser):
  parser.add_argument("--gin_file", action="append", required=True,
                      help="gin file (path, or relative to gin_configs/); repeatable")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="a gin binding line; repeatable (or use --gin.KEY=VALUE)")


def run(args):
  import xlalign_tasks  # noqa: F401  (IMPORTS: registers the seqio tasks)
  from xlalign_jax.trainers import ppo, reward, sft  # noqa: F401  (IMPORTS: gin configurables)

  bindings = list(args.gin_bindings) + gin_utils.bindings_from_flags(args.extra)
  gin_utils.parse(args.gin_file, bindings)
  result = gin_utils.call_configured(train)
  metrics = {k: v for k, v in result.items() if k != "params"}
  print("done: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
