"""SFT train-step throughput (forward + backward + Adafactor) of the jitted, sharded step.

  python bench/sft_step.py [--configs mt5_tiny,mt5_small] [--batch 8] [--inputs 256] [--targets 64]
      [--steps 5] --output bench/sft_step.json

Random tokens (no input pipeline), one process on all visible devices, data-parallel mesh.
Reports the median step time over `--steps` timed steps after one compile/warm-up step.
"""
import argparse
import json
import pathlib
import statistics
import sys
import time

import gin

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from xlalign_jax import host_devices, huge_pages  # noqa: E402
huge_pages.reexec_if_wanted()  # as the xlalign command runs; both sides of a comparison
host_devices.configure()  # XLALIGN_CPU_DEVICES, as for the xlalign command; before jax
import jax  # noqa: E402
import numpy as np  # noqa: E402
from xlalign_jax import gin_utils, partitioning, training  # noqa: E402
from xlalign_jax.config import ModelConfig  # noqa: E402
from xlalign_jax.trainers.sft import lm_loss_fn  # noqa: E402


def model_config(name: str) -> ModelConfig:
  gin_utils.parse([f"models/{name}.gin"], [])
  config = ModelConfig()
  gin.clear_config()
  return config


def lm_batch(config: ModelConfig, batch: int, inputs: int, targets: int, seed: int = 0) -> dict:
  """Random teacher-forced LM batch (tokens >= 2: no padding, no EOS)."""
  rng = np.random.default_rng(seed)
  tgt = rng.integers(2, config.vocab_size, (batch, targets)).astype(np.int32)
  return {
      "encoder_input_tokens": rng.integers(2, config.vocab_size, (batch, inputs)).astype(np.int32),
      "decoder_target_tokens": tgt,
      "decoder_input_tokens": np.concatenate([np.zeros((batch, 1), np.int32), tgt[:, :-1]], 1),
      "decoder_loss_weights": np.ones((batch, targets), np.float32),
  }


def make_stepper(model, loss_fn, host_batch: dict, mesh, rules, params=None, seed: int = 0):
  """(run_one, num_params): `run_one()` runs one jitted train step (Adafactor) on `host_batch`
  and blocks until it is done. `params` (a host tree) are placed on the mesh; None initialises
  them randomly."""
  optimizer = training.make_optimizer(training.OptimizerConfig())
  abstract, param_sh = training.abstract_params(model, mesh, rules)
  opt_sh = training.opt_state_shardings(optimizer, abstract, mesh)
  if params is None:
    params, _ = partitioning.sharded_init(training.model_init_fn(model), jax.random.PRNGKey(seed),
                                          mesh, rules)
  else:
    params = jax.device_put(params, param_sh)
  opt_state = training.init_opt_state(optimizer, params, param_sh, opt_sh, mesh, rules)
  batch_sh = {k: partitioning.batch_sharding(mesh, rules, v.ndim) for k, v in host_batch.items()}
  step = training.make_train_step(loss_fn, optimizer, 0, 1, param_sh, opt_sh, batch_sh, mesh, rules)
  state = {"params": params, "opt": opt_state, "i": 0}

  def run_one():
    b = partitioning.shard_batch(host_batch, mesh, rules)
    state["params"], state["opt"], metrics = step(state["params"], state["opt"], b, state["i"])
    state["i"] += 1
    return float(jax.block_until_ready(metrics["loss"]))

  return run_one, training.count_params(abstract)


def timed(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def bench(name: str, batch: int, inputs: int, targets: int, steps: int) -> dict:
  config = model_config(name)
  mesh_config = partitioning.MeshConfig()
  mesh, rules = partitioning.create_mesh(mesh_config), mesh_config.logical_axis_rules
  model = training.build_model(config)
  run_one, num_params = make_stepper(model, lm_loss_fn(model),
                                     lm_batch(config, batch, inputs, targets), mesh, rules)
  times = [timed(run_one) for _ in range(steps + 1)]
  median = statistics.median(times[1:])
  tokens = batch * (inputs + targets)
  return {"config": name, "params": num_params, "batch": batch,
          "input_tokens": inputs, "target_tokens": targets, "devices": jax.device_count(),
          "compile_and_first_step_s": times[0], "median_step_s": median,
          "tokens_per_s": tokens / median}


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--configs", default="mt5_tiny,mt5_small")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--inputs", type=int, default=256)
  p.add_argument("--targets", type=int, default=64)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--output", default="bench/sft_step.json")
  args = p.parse_args()
  results = []
  for name in args.configs.split(","):
    r = bench(name, args.batch, args.inputs, args.targets, args.steps)
    print(f"{name:10s} {r['params']:>12,d} params  step {r['median_step_s'] * 1e3:9.1f} ms  "
          f"{r['tokens_per_s']:9.0f} tokens/s", flush=True)
    results.append(r)
  pathlib.Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
  main()
