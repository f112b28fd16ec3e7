"""PPO step times of a finished demo's PPO stage, re-run from its own config: how much of a step
is the value model's update and how much the policy's, and the policy update's FLOP rate.

  python bench/ppo_steps.py --workdir W [--stage ppo_es_es] [--steps 30] --output F.json

`W` is a finished `xlalign demo` (or `xlalign run`) workdir; the stage's `ppo_config.json` is
re-run for `--steps` steps into a scratch model directory, with the demo's data and the compile
cache `xlalign` uses. Steps before the config's `policy_start_step` update the value model only,
later ones the policy too; each group's median step time is reported (the first step, which
compiles, and the first step of each group are left out), and the policy update's share: the two
medians' difference, against its model FLOPs (`bench/flops.py`: forward and backward over every
minibatch of every pass) and against the rate of a 2048 x 2048 float32 matmul measured after it.
"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xlalign_jax import huge_pages  # noqa: E402
huge_pages.reexec_if_wanted()  # as the xlalign command runs

from bench import flops, ours  # noqa: E402
from xlalign_jax import checkpoints, cli, partitioning, run_history, training  # noqa: E402
from xlalign_jax.errors import UserError  # noqa: E402
from xlalign_jax.trainers import ppo  # noqa: E402


def ppo_config(raw: dict, model_dir: str, steps: int) -> ppo.PPOConfig:
  """The PPOConfig a stage wrote to ppo_config.json, to run `steps` steps in `model_dir`."""
  mesh = dict(raw["mesh_config"], logical_axis_rules=tuple(
      tuple(rule) for rule in raw["mesh_config"]["logical_axis_rules"]))
  return ppo.PPOConfig(**dict(
      raw, mesh_config=partitioning.MeshConfig(**mesh),
      policy_optimizer=training.OptimizerConfig(**raw["policy_optimizer"]),
      value_optimizer=training.OptimizerConfig(**raw["value_optimizer"]),
      model_dir=model_dir, train_steps=steps, checkpoint_period=10 ** 9, log_period=10 ** 9))


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--workdir", required=True)
  p.add_argument("--stage", default="ppo_es_es")
  p.add_argument("--steps", type=int, default=30)
  p.add_argument("--output", required=True)
  args = p.parse_args()
  stage = pathlib.Path(args.workdir) / "stages" / args.stage
  if not (stage / "ppo_config.json").exists():
    sys.exit(f"ppo_steps: no {stage / 'ppo_config.json'}: not a finished PPO stage")
  os.environ.setdefault("XLALIGN_DATA_DIR", str(pathlib.Path(args.workdir) / "data"))
  cli.enable_compilation_cache()

  with tempfile.TemporaryDirectory() as scratch:
    cfg = ppo_config(json.loads((stage / "ppo_config.json").read_text()), scratch, args.steps)
    if not 3 <= cfg.policy_start_step <= args.steps - 3:
      sys.exit(f"ppo_steps: --steps {args.steps} leaves too few steps on one side of the "
               f"config's policy_start_step {cfg.policy_start_step}")
    t0 = time.perf_counter()
    try:
      ppo.run(cfg, partitioning.create_mesh(cfg.mesh_config))
    except UserError as exc:  # e.g. the config's checkpoint paths, relative to where the grid ran
      sys.exit(f"ppo_steps: {exc} (paths in {stage / 'ppo_config.json'} are read from the "
               f"current directory)")
    total = time.perf_counter() - t0
    seconds = run_history.read_scalars(pathlib.Path(scratch) / "tensorboard")["step_seconds"]
  value_only = [t for s, t in seconds.items() if 2 < s <= cfg.policy_start_step]
  both = [t for s, t in seconds.items() if s > cfg.policy_start_step + 1]
  value_median, both_median = statistics.median(value_only), statistics.median(both)

  peak = max(ours.peak_matmul(2048, repeats=5) for _ in range(3))
  model = checkpoints.load_model_config(cfg.policy_checkpoint)
  minibatch = cfg.batch_size // cfg.num_minibatches
  policy_flop = cfg.ppo_epochs * cfg.num_minibatches * flops.train_step(
      model, minibatch, cfg.task_feature_lengths["inputs"], cfg.task_feature_lengths["targets"])
  policy_seconds = both_median - value_median
  rate = policy_flop / 1e9 / policy_seconds
  result = {
      "stage": str(stage), "steps": args.steps, "seconds_total": total,
      "step_seconds_value_only": value_median, "step_seconds_value_and_policy": both_median,
      "policy_update_seconds": policy_seconds, "policy_update_gflop": policy_flop / 1e9,
      "policy_update_gflops_per_s": rate, "matmul_peak_gflops_per_s": peak,
      "policy_update_share_of_peak": rate / peak,
      "steps_measured": {"value_only": len(value_only), "value_and_policy": len(both)},
  }
  pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
