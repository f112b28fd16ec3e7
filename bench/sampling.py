"""Sampling throughput of the jitted KV-cache sampler at n = 1, 4, 16, 64 samples per input.

  python bench/sampling.py [--config mt5_tiny] [--batch 8] [--input_length 128] [--new_tokens 64]
      [--ns 1,4,16,64] [--repeats 3] --output bench/sampling.json

Random weights; tokens/s counts generated tokens (EOS included). Medians over `--repeats` timed
runs after one compile run per n. One process on all visible devices, data-parallel.
"""
import argparse
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from xlalign_jax import host_devices, huge_pages  # noqa: E402
huge_pages.reexec_if_wanted()  # as the xlalign command runs; both sides of a comparison
host_devices.configure()  # XLALIGN_CPU_DEVICES, as for the xlalign command; before jax
import jax  # noqa: E402
import numpy as np  # noqa: E402
from bench.sft_step import model_config  # noqa: E402
from xlalign_jax import decoding, partitioning, training  # noqa: E402


def bench(config_name: str, batch: int, input_length: int, new_tokens: int, ns, repeats: int):
  config = model_config(config_name)
  mesh_config = partitioning.MeshConfig()
  mesh, rules = partitioning.create_mesh(mesh_config), mesh_config.logical_axis_rules
  model = training.build_model(config)
  params, shardings = partitioning.sharded_init(training.model_init_fn(model),
                                                jax.random.PRNGKey(0), mesh, rules)
  sampler = decoding.Sampler(model, params, mesh, rules, shardings)
  enc = np.random.default_rng(0).integers(2, config.vocab_size, (batch, input_length)).astype(
      np.int32)
  rows = []
  for n in ns:
    cfg = decoding.SamplingConfig(n, new_tokens, temperature=1.0)
    times, tokens = [], 0
    for r in range(repeats + 1):
      t0 = time.perf_counter()
      out = sampler(enc, jax.random.PRNGKey(r), cfg)
      lengths = np.asarray(jax.device_get(out.lengths))
      times.append(time.perf_counter() - t0)
      tokens = int(lengths.sum())
    median = statistics.median(times[1:])
    rows.append({"config": config_name, "batch": batch, "n": n, "input_length": input_length,
                 "new_tokens": new_tokens, "generated_tokens": tokens, "median_s": median,
                 "tokens_per_s": tokens / median, "compile_and_first_s": times[0]})
    print(f"{config_name} B={batch} n={n:3d}: {median:7.3f} s  {tokens / median:10.0f} tokens/s",
          flush=True)
  return rows


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="mt5_tiny")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--input_length", type=int, default=128)
  p.add_argument("--new_tokens", type=int, default=64)
  p.add_argument("--ns", default="1,4,16,64")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--output", default="bench/sampling.json")
  args = p.parse_args()
  rows = bench(args.config, args.batch, args.input_length, args.new_tokens,
               [int(n) for n in args.ns.split(",")], args.repeats)
  pathlib.Path(args.output).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
  main()
