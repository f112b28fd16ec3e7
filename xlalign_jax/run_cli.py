"""`xlalign run EXPERIMENT.gin [--gin.KEY=VALUE ...]`: a whole grid as resumable stages.

Re-running the same command skips finished stages and resumes training from checkpoints.
"""
from xlalign_jax import gin_utils

ACCEPTS_GIN_FLAGS = True
IMPORTS = ("xlalign_jax.experiment",)  # jax, TensorFlow, seqio (~12 s): not for `--help`


def add_arguments(parser):
  parser.add_argument("experiment", help="experiment gin file (path, or relative to gin_configs/)")
  parser.add_argument("--gin_bindings", action="append", default=[])


def run_experiment(gin_file: str, bindings) -> dict:
  from xlalign_jax import experiment  # pylint: disable=g-import-not-at-top  (IMPORTS)

  gin_utils.parse([gin_file], bindings)
  config = gin_utils.call_configured(experiment.ExperimentConfig)
  return experiment.Experiment(config).run()


def run(args):
  run_experiment(args.experiment,
                 list(args.gin_bindings) + gin_utils.bindings_from_flags(args.extra))
