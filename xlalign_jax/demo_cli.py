"""`xlalign demo [--workdir workdir/demo] [--langs en,es,ru] [--seed 0]`: the embedded default.

= `xlalign run gin_configs/experiments/demo.gin` on the synthetic world with three languages,
mt5_tiny on the CPU, best-of-n for every (source, target) pair and PPO for two pairs. Re-running
the same command skips finished stages and resumes training from checkpoints.
"""
from xlalign_jax.errors import UserError
from xlalign_jax.run_cli import IMPORTS, run_experiment  # noqa: F401  (IMPORTS: for xlalign_jax.cli)


def add_arguments(parser):
  parser.add_argument("--workdir", default="workdir/demo")
  parser.add_argument("--langs", default="en,es,ru",
                      help="comma-separated synthetic stand-ins (de, en, es, ru, tr, vi)")
  parser.add_argument("--seed", type=int, default=0)


def run(args):
  langs = tuple(l.strip() for l in args.langs.split(",") if l.strip())
  if len(langs) < 2:
    raise UserError(f"--langs needs at least two languages, got {args.langs!r}")
  # PPO for the first language's RM driving the second's policy, and for the second's own RM.
  ppo_pairs = ((langs[0], langs[1]), (langs[1], langs[1]))
  run_experiment("experiments/demo.gin", [
      f"ExperimentConfig.workdir = {args.workdir!r}", f"ExperimentConfig.langs = {langs!r}",
      f"ExperimentConfig.seed = {args.seed}", f"ExperimentConfig.ppo_pairs = {ppo_pairs!r}"])
