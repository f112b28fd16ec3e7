"""The SFT train step split into forward, forward + backward and the whole step, ours against
transformers' PyTorch T5, each side in its own process (one process holding both libraries slowed
PyTorch's forward by half), the processes alternating.

  pip install -e '.[bench]'
  python bench/train_split.py [--config mt5_tiny] [--rounds 4] [--repeats 9] \
      --output bench/train_split.json

Random weights (the times do not depend on them), batch 8, 256 input / 64 target tokens as in
bench/run.py. Per part: the median over rounds of each round's median, and ours / theirs.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from xlalign_jax import huge_pages  # noqa: E402
huge_pages.reexec_if_wanted()  # as the xlalign command runs; the sides' processes inherit it

PARTS = ("forward", "forward+backward", "step")
BATCH, INPUTS, TARGETS = 8, 256, 64


def _medians(cases, repeats: int) -> dict:
  times = {name: [] for name in cases}
  for fn in cases.values():  # compile / warm up
    fn()
    fn()
  for _ in range(repeats):
    for name, fn in cases.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  return {name: statistics.median(t) for name, t in times.items()}


def ours(config_name: str, repeats: int) -> dict:
  from xlalign_jax import host_devices
  host_devices.configure()
  import jax
  import jax.numpy as jnp
  from bench.sft_step import lm_batch, make_stepper, model_config
  from xlalign_jax import partitioning, training
  from xlalign_jax.trainers.sft import lm_loss_fn
  config = model_config(config_name)
  host_batch = lm_batch(config, BATCH, INPUTS, TARGETS)
  mesh_config = partitioning.MeshConfig()
  mesh, rules = partitioning.create_mesh(mesh_config), mesh_config.logical_axis_rules
  model = training.build_model(config)
  params, _ = partitioning.sharded_init(training.model_init_fn(model), jax.random.PRNGKey(0),
                                        mesh, rules)
  loss_fn = lm_loss_fn(model)
  batch = {k: jnp.asarray(v) for k, v in host_batch.items()}
  loss = lambda p, b: loss_fn(p, b, jax.random.PRNGKey(0))[0]  # the batch an argument, as in
  forward, gradient = jax.jit(loss), jax.jit(jax.grad(loss))     # training (not a constant)
  step, _ = make_stepper(model, loss_fn, host_batch, mesh, rules)
  return _medians({"forward": lambda: jax.block_until_ready(forward(params, batch)),
                   "forward+backward": lambda: jax.block_until_ready(gradient(params, batch)),
                   "step": step}, repeats)


def theirs(config_name: str, repeats: int) -> dict:
  from bench import peer_hf
  import torch
  from bench.sft_step import lm_batch, model_config
  peer_hf.set_threads()
  config = model_config(config_name)
  host_batch = lm_batch(config, BATCH, INPUTS, TARGETS)
  with tempfile.TemporaryDirectory() as d:
    peer_hf.save_random_model(config, d)
    model = peer_hf.load_model(d)
  model.train()
  t = {k: torch.from_numpy(v) for k, v in host_batch.items()}
  loss = lambda: model(input_ids=t["encoder_input_tokens"],
                       decoder_input_ids=t["decoder_input_tokens"],
                       labels=t["decoder_target_tokens"].long(), use_cache=False).loss

  def forward_backward():
    loss().backward()
    model.zero_grad(set_to_none=True)

  def forward():
    with torch.no_grad():  # as ours: no activations kept for a backward pass
      return loss().item()

  step = peer_hf.sft_stepper(model, host_batch)
  return _medians({"forward": forward, "forward+backward": forward_backward, "step": step},
                  repeats)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--config", default="mt5_tiny")
  p.add_argument("--rounds", type=int, default=4)
  p.add_argument("--repeats", type=int, default=9)
  p.add_argument("--output", default="bench/train_split.json")
  p.add_argument("--side", choices=("ours", "theirs"), help=argparse.SUPPRESS)  # a subprocess
  args = p.parse_args()
  if args.side:
    print(json.dumps({"ours": ours, "theirs": theirs}[args.side](args.config, args.repeats)))
    return
  rounds = {"ours": [], "theirs": []}
  for r in range(args.rounds):
    for side in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
      out = subprocess.run([sys.executable, __file__, "--side", side, "--config", args.config,
                            "--repeats", str(args.repeats)], check=True, capture_output=True,
                           text=True).stdout
      rounds[side].append(json.loads(out.strip().splitlines()[-1]))
      print(f"round {r + 1} {side:6s} " + "  ".join(
          f"{part} {1e3 * rounds[side][-1][part]:7.1f} ms" for part in PARTS), flush=True)
  result = {"config": args.config, "batch": BATCH, "input_tokens": INPUTS,
            "target_tokens": TARGETS, "rounds": rounds, "median_s": {}, "ours_over_theirs": {}}
  for part in PARTS:
    med = {side: statistics.median(r[part] for r in rounds[side]) for side in rounds}
    result["median_s"][part] = med
    result["ours_over_theirs"][part] = med["ours"] / med["theirs"]
    print(f"{part:17s} ours {1e3 * med['ours']:7.1f} ms  transformers {1e3 * med['theirs']:7.1f} ms"
          f"  ours / theirs {med['ours'] / med['theirs']:.2f}")
  pathlib.Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
