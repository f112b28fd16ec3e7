"""`xlalign train --gin_file=EXPERIMENT.gin [--gin_file=...] [--gin.KEY=VALUE ...]`.

The experiment's run file binds `xlalign.train.trainer` to a trainer (e.g. `@sft.train`), which
reads everything else from gin.
"""
import gin

from xlalign_jax import gin_utils, host_devices

ACCEPTS_GIN_FLAGS = True


@gin.configurable(module="xlalign")
def train(trainer=gin.REQUIRED):
  return trainer()


def add_arguments(parser):
  parser.add_argument("--gin_file", action="append", required=True,
                      help="gin file (path, or relative to gin_configs/); repeatable")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="a gin binding line; repeatable (or use --gin.KEY=VALUE)")


def run(args):
  # Here, not at the top, so that `--help` does not wait for jax and TensorFlow to import.
  import xlalign_tasks  # noqa: F401  (registers seqio tasks)
  from xlalign_jax.trainers import ppo, reward, sft  # noqa: F401  (registers gin configurables)

  host_devices.keep_tensorflow_on_the_host()
  bindings = list(args.gin_bindings) + gin_utils.bindings_from_flags(args.extra)
  gin_utils.parse(args.gin_file, bindings)
  result = gin_utils.call_configured(train)
  metrics = {k: v for k, v in result.items() if k != "params"}
  print("done: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
