"""Sharding overhead: the SFT step on 8 fake CPU devices vs 1, same global batch, one process.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python bench/sharding.py [--steps 3]

bench/run.py starts this in a subprocess (the flag must be set before jax is imported) and reads
the JSON on the last line of stdout. Both meshes live in the same process, so they share its XLA
settings; timed steps alternate between them and the medians are compared.
"""
import argparse
import json
import pathlib
import statistics
import sys

import jax
import numpy as np
from jax.sharding import Mesh

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bench.sft_step import lm_batch, make_stepper, model_config, timed  # noqa: E402
from xlalign_jax import partitioning, training  # noqa: E402
from xlalign_jax.trainers.sft import lm_loss_fn  # noqa: E402


def mesh_of(num_devices: int) -> Mesh:
  devices = np.asarray(jax.devices()[:num_devices]).reshape(num_devices, 1)
  return Mesh(devices, partitioning.MESH_AXES)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="mt5_tiny")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--inputs", type=int, default=256)
  p.add_argument("--targets", type=int, default=64)
  p.add_argument("--steps", type=int, default=3)
  args = p.parse_args()
  if jax.device_count() < 8:
    raise SystemExit("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 set before start")
  config = model_config(args.config)
  model = training.build_model(config)
  batch = lm_batch(config, args.batch, args.inputs, args.targets)
  rules = partitioning.MeshConfig().logical_axis_rules
  runners = {k: make_stepper(model, lm_loss_fn(model), batch, mesh_of(k), rules)[0]
             for k in (1, 8)}
  times = {k: [] for k in runners}
  first = {k: timed(run) for k, run in runners.items()}  # compile
  for i in range(args.steps):
    for k in ((1, 8) if i % 2 == 0 else (8, 1)):
      times[k].append(timed(runners[k]))
  median = {k: statistics.median(v) for k, v in times.items()}
  tokens = args.batch * (args.inputs + args.targets)
  print(json.dumps({
      "config": args.config, "global_batch": args.batch, "steps": args.steps,
      "median_step_s": {str(k): v for k, v in median.items()},
      "tokens_per_s": {str(k): tokens / v for k, v in median.items()},
      "compile_and_first_step_s": {str(k): v for k, v in first.items()},
      "overhead": median[8] / median[1] - 1.0,
  }))


if __name__ == "__main__":
  main()
