"""Our SFT and RM (pairwise) train-step medians alone, for A/B timing of two checkouts.

  cd CHECKOUT && python bench/train_steps.py [--config mt5_tiny] [--steps 11]

Batch 8, 256 input / 64 target tokens, random tokens and weights, the steppers of bench/run.py
(`bench/ours.py`). Run it alternately in the two checkouts (each imports its own xlalign_jax):

  for i in 1 2 3; do for t in OLD NEW; do (cd $t && python bench/train_steps.py); done; done

Medians of separate processes move by 10% or more on this machine between rounds: one round
showed a 0.9 s gain at mt5_small where three same-process alternations (both variants built in
one process, steps alternating) later found 0-0.35 s (bench/RESULTS.md, "Session 17"). Trust
several rounds, and where the two variants can live in one process, compare them there.
"""
import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from xlalign_jax import host_devices  # noqa: E402
host_devices.configure()  # XLALIGN_CPU_DEVICES, as for the xlalign command; before jax
import jax  # noqa: E402
from bench.ours import Ours, pairwise_batch, rm_params  # noqa: E402
from bench.sft_step import lm_batch, model_config  # noqa: E402
from xlalign_jax import partitioning, training  # noqa: E402


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="mt5_tiny")
  p.add_argument("--steps", type=int, default=11)
  args = p.parse_args()
  config = model_config(args.config)
  mesh_config = partitioning.MeshConfig()
  mesh, rules = partitioning.create_mesh(mesh_config), mesh_config.logical_axis_rules
  params, _ = partitioning.sharded_init(training.model_init_fn(training.build_model(config)),
                                        jax.random.PRNGKey(0), mesh, rules)
  host = jax.device_get(params)
  ours = Ours(config, host)
  steppers = {"sft": ours.sft_stepper(lm_batch(config, 8, 256, 64)),
              "rm": ours.rm_stepper(rm_params(host, config), pairwise_batch(config, 8, 256, 64))}
  checkout = pathlib.Path(__file__).resolve().parents[1].name
  for kind, step in steppers.items():
    step()  # compile
    times = []
    for _ in range(args.steps):
      t0 = time.perf_counter()
      step()
      times.append(time.perf_counter() - t0)
    print(f"{checkout} {args.config} {kind}: median {statistics.median(times) * 1e3:.1f} ms "
          f"over {args.steps} steps", flush=True)


if __name__ == "__main__":
  main()
