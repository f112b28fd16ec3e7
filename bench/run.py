"""Ours against Hugging Face transformers' PyTorch T5, side by side in one run, same weights.

  pip install -e '.[bench]'
  python bench/run.py [--quick] --output bench/results.json

For each model config: a seeded random PyTorch T5 is saved with `save_pretrained` and converted by
the repo's importer (`convert.load_hf`, what `xlalign convert --from hf` runs), logits are checked
equal, then sampling, the SFT step and the reward-model step run interleaved (ours then theirs,
the order alternating per repetition) and medians are compared. Also in the run: the float32
matmul peak of this machine (for model FLOP utilisation), analytic FLOPs beside XLA's
cost_analysis, best-of-n time over n, and 8 fake devices vs 1 (a subprocess). See bench/RESULTS.md.

--quick: mt5_tiny only, n = 16 only, 1 repetition, 2 timed train steps (a few minutes).
"""
import argparse
import dataclasses
import gc
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Tuple

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from xlalign_jax import host_devices, huge_pages  # noqa: E402
huge_pages.reexec_if_wanted()  # as the xlalign command runs; both sides of a comparison
host_devices.configure()  # XLALIGN_CPU_DEVICES, as for the xlalign command; before jax
from bench import peer_hf  # noqa: E402  (first: exits with the install hint if torch is missing)
import flax  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from bench import flops, goals  # noqa: E402
from bench.ours import Ours, load_converted, pairwise_batch, peak_matmul, rm_params  # noqa: E402
from bench.sft_step import lm_batch, model_config  # noqa: E402

BATCH, PROMPT_LEN, NEW_TOKENS = 8, 128, 64
TRAIN_INPUTS, TRAIN_TARGETS = 256, 64
START = time.perf_counter()


@dataclasses.dataclass(frozen=True)
class Plan:
  configs: Tuple[str, ...]
  ns: Dict[str, Tuple[int, ...]]
  sampling_repeats: Dict[str, int]
  train_steps: Dict[str, int]
  bon_ns: Tuple[int, ...]
  bon_repeats: int
  sharding_steps: int
  peak_sizes: Tuple[int, ...]


QUICK = Plan(("mt5_tiny",), {"mt5_tiny": (16,)}, {"mt5_tiny": 1}, {"mt5_tiny": 2},
             (1, 4, 16), 1, 2, (2048,))
# mt5_small sampling: one timed repetition (one HF generate at n = 64 takes ~10 minutes here).
# mt5_tiny sampling: 7 (3 gave ratios 15% apart from one run to the next), train steps: 15 (a
# step is ~0.1-0.2 s and single steps vary by up to 1.6x here); mt5_small train steps: 5 (with 3,
# the RM-step ratio was 1.06 in one run and 1.37 in the next, 2026-11-25).
FULL = Plan(("mt5_tiny", "mt5_small"), {"mt5_tiny": (16, 64), "mt5_small": (16, 64)},
            {"mt5_tiny": 7, "mt5_small": 1}, {"mt5_tiny": 15, "mt5_small": 5},
            (1, 4, 16, 64), 3, 5, (2048, 4096))


def log(msg: str) -> None:
  print(f"[{time.perf_counter() - START:7.1f}s] {msg}", flush=True)


def timed_value(fn: Callable):
  t0 = time.perf_counter()
  value = fn()
  return time.perf_counter() - t0, value


def interleaved(fns: Dict[str, Callable], repeats: int) -> Dict[str, List]:
  """(seconds, value) per repetition for each side; the order alternates every repetition."""
  out = {k: [] for k in fns}
  order = list(fns)
  for r in range(repeats):
    for k in (order if r % 2 == 0 else order[::-1]):
      out[k].append(timed_value(fns[k]))
  return out


# --------------------------------------------------------------------------------------------------
# Machine and the limit
# --------------------------------------------------------------------------------------------------


def _proc_field(path: str, name: str):
  """The value of the first `name: value` line of a /proc file, or None."""
  text = pathlib.Path(path).read_text() if os.path.exists(path) else ""
  return next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith(name)), None)


def machine(threads: dict) -> dict:
  model = _proc_field("/proc/cpuinfo", "model name") or platform.processor()
  mem = _proc_field("/proc/meminfo", "MemTotal")
  flags = (_proc_field("/proc/cpuinfo", "flags") or "").split()
  mhz = _proc_field("/proc/cpuinfo", "cpu MHz")
  return {"cpu_model": model, "cpu_count": os.cpu_count(), "memory": mem,
          # The vector units XLA and PyTorch compile for: machines sold under one model name
          # differ here, and with them the matmul peak and float rounding.
          "cpu_vector_flags": sorted(f for f in flags if f.startswith(("avx", "fma", "amx"))),
          "cpu_mhz": float(mhz) if mhz else None,
          "platform": platform.platform(), "python": platform.python_version(),
          "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),  # huge_pages: both sides share it
          "load_average_at_start": os.getloadavg(),
          "versions": {"jax": jax.__version__, "flax": flax.__version__, **peer_hf.versions()},
          "threads": {**threads, "xla": "default (XLA_FLAGS=%r)" % os.environ.get("XLA_FLAGS", ""),
                      "jax_devices": [str(d) for d in jax.devices()]}}


def measure_peak(sizes) -> dict:
  out = {}
  for size in sizes:
    out[f"jax/{size}"] = peak_matmul(size, repeats=5)
    out[f"torch/{size}"] = peer_hf.peak_matmul(size, repeats=5)
    log(f"peak f32 matmul {size}: jax {out[f'jax/{size}']:.1f}, torch "
        f"{out[f'torch/{size}']:.1f} GFLOP/s")
  return out


# --------------------------------------------------------------------------------------------------
# One model config
# --------------------------------------------------------------------------------------------------


def check_logits(ours: Ours, hf, config) -> dict:
  """Both sides give the same logits on the same input: the weights are the same."""
  b = lm_batch(config, 2, TRAIN_INPUTS, TRAIN_TARGETS, seed=7)
  enc, dec_in, tgt = (b[k] for k in ("encoder_input_tokens", "decoder_input_tokens",
                                     "decoder_target_tokens"))
  mine, theirs = ours.logits(enc, dec_in, tgt), peer_hf.logits(hf, enc, dec_in)
  diff = float(np.abs(mine - theirs).max())
  return {"max_abs_logit_diff": diff, "max_abs_logit": float(np.abs(theirs).max()),
          "ok": diff < 1e-3}


def check_rewards(ours: Ours, rm_host: dict, hf_rm, pairs: dict) -> dict:
  """The reward models (backbone + the same head) give the same rewards."""
  enc = pairs["encoder_input_tokens"][:2]
  dec_in, tgt = pairs["chosen_decoder_input_tokens"][:2], pairs["chosen_decoder_target_tokens"][:2]
  diff = float(np.abs(ours.rewards(rm_host, enc, dec_in, tgt) -
                      peer_hf.rewards(hf_rm, enc, dec_in, tgt)).max())
  return {"max_abs_reward_diff": diff, "ok": diff < 1e-3}


def sampling(name: str, ours: Ours, hf, plan: Plan, config) -> dict:
  prompts = np.random.default_rng(3).integers(2, config.vocab_size,
                                              (BATCH, PROMPT_LEN)).astype(np.int32)
  out = {}
  full_hf_warmup = name != "mt5_small"
  for n in plan.ns[name]:
    seed = iter(range(1000))
    t_ours, _ = timed_value(lambda: ours.sample(prompts, n, NEW_TOKENS, 0))
    # mt5_small: a full warm-up generate would cost as much as the timed one.
    t_hf, _ = timed_value(lambda: peer_hf.generate(
        hf, prompts, n, NEW_TOKENS if full_hf_warmup else 2, 0))
    log(f"{name} n={n}: warm-up ours {t_ours:.1f} s (compile + run), hf {t_hf:.1f} s")
    runs = interleaved({"ours": lambda: ours.sample(prompts, n, NEW_TOKENS, next(seed))[:2],
                        "hf": lambda: peer_hf.generate(hf, prompts, n, NEW_TOKENS, next(seed))},
                       plan.sampling_repeats[name])
    rec = {"n": n, "batch": BATCH, "prompt_len": PROMPT_LEN, "new_tokens": NEW_TOKENS,
           "repeats": plan.sampling_repeats[name],
           "hf_warmup": "full" if full_hf_warmup else "max_new_tokens=2",
           "model_flops": flops.sampling(config, BATCH, PROMPT_LEN, n, NEW_TOKENS)}
    for side, values in runs.items():
      median = statistics.median(t for t, _ in values)
      tokens, eos_rows = values[0][1]
      rec[side] = {"times_s": [t for t, _ in values], "median_s": median, "tokens": tokens,
                   "tokens_per_s": tokens / median, "rows_with_eos": eos_rows}
    rec["ratio"] = rec["ours"]["tokens_per_s"] / rec["hf"]["tokens_per_s"]
    log(f"{name} n={n}: ours {rec['ours']['tokens_per_s']:.0f} tok/s, hf "
        f"{rec['hf']['tokens_per_s']:.0f} tok/s, ratio {rec['ratio']:.2f} "
        f"(median of {rec['repeats']}, EOS rows: ours {rec['ours']['rows_with_eos']}, "
        f"hf {rec['hf']['rows_with_eos']})")
    out[f"{name}/n{n}"] = rec
  return out


def train(kind: str, name: str, ours_step: Callable, hf_step: Callable, steps: int,
          tokens: int, model_flops: float) -> dict:
  t_ours, loss_ours = timed_value(ours_step)
  t_hf, loss_hf = timed_value(hf_step)
  log(f"{kind}/{name}: first step ours {t_ours:.1f} s (compile), hf {t_hf:.1f} s; "
      f"loss {loss_ours:.3f} vs {loss_hf:.3f}")
  runs = interleaved({"ours": ours_step, "hf": hf_step}, steps)
  rec = {"steps": steps, "tokens_per_step": tokens, "model_flops_per_step": model_flops,
         "first_loss": {"ours": loss_ours, "hf": loss_hf}}
  for side, values in runs.items():
    median = statistics.median(t for t, _ in values)
    rec[side] = {"times_s": [t for t, _ in values], "median_step_s": median,
                 "tokens_per_s": tokens / median}
  rec["ratio"] = rec["ours"]["tokens_per_s"] / rec["hf"]["tokens_per_s"]
  log(f"{kind}/{name}: ours {rec['ours']['median_step_s'] * 1e3:.0f} ms, hf "
      f"{rec['hf']['median_step_s'] * 1e3:.0f} ms per step, ratio {rec['ratio']:.2f}")
  return rec


def run_config(name: str, plan: Plan, results: dict) -> None:
  config = model_config(name)
  with tempfile.TemporaryDirectory(prefix="xlalign_bench_") as hf_dir:
    t, _ = timed_value(lambda: peer_hf.save_random_model(config, hf_dir))
    ours = Ours(config, load_converted(hf_dir, config))
    rm_host = rm_params(ours.host_params, config)
    hf = peer_hf.load_model(hf_dir)
    log(f"{name}: random HF model saved and converted ({t:.1f} s)")
    check = results["weights_match"][name] = check_logits(ours, hf, config)
    log(f"{name}: weights match: max |logit diff| {check['max_abs_logit_diff']:.2e} "
        f"(max |logit| {check['max_abs_logit']:.1f}) -> {'ok' if check['ok'] else 'MISMATCH'}")

    results["sampling"].update(sampling(name, ours, hf, plan, config))
    del hf
    if name == "mt5_tiny":
      results["bon"] = best_of_n(ours, rm_host, plan)
    ours.drop_sampler()
    gc.collect()

    steps = plan.train_steps[name]
    lm = lm_batch(config, BATCH, TRAIN_INPUTS, TRAIN_TARGETS)
    results["train"][f"sft/{name}"] = train(
        "sft", name, ours.sft_stepper(lm), peer_hf.sft_stepper(peer_hf.load_model(hf_dir), lm),
        steps, BATCH * (TRAIN_INPUTS + TRAIN_TARGETS),
        flops.train_step(config, BATCH, TRAIN_INPUTS, TRAIN_TARGETS))
    gc.collect()

    pairs = pairwise_batch(config, BATCH, TRAIN_INPUTS, TRAIN_TARGETS)
    hf_rm = peer_hf.RewardModel(peer_hf.load_model(hf_dir),
                                rm_host["decoder"]["score_head"]["kernel"])
    check = check_rewards(ours, rm_host, hf_rm, pairs)
    results["weights_match"][name].update(check, ok=results["weights_match"][name]["ok"]
                                          and check["ok"])
    log(f"{name}: reward models match: max |reward diff| {check['max_abs_reward_diff']:.2e}")
    results["train"][f"rm/{name}"] = train(
        "rm", name, ours.rm_stepper(rm_host, pairs), peer_hf.rm_stepper(hf_rm, pairs), steps,
        BATCH * (TRAIN_INPUTS + 2 * TRAIN_TARGETS),
        flops.train_step(config, BATCH, TRAIN_INPUTS, TRAIN_TARGETS, 2, score_head=True))
    del hf_rm
    gc.collect()

  n = max(plan.ns[name])
  results["flop_counts"][name] = ours.xla_flops(BATCH, TRAIN_INPUTS, TRAIN_TARGETS, BATCH, n,
                                                PROMPT_LEN, NEW_TOKENS)
  log(f"{name}: XLA / analytic FLOPs: " + ", ".join(
      f"{k} {v['xla_over_analytic']:.3f}" if v["xla_over_analytic"] else f"{k} n/a"
      for k, v in results["flop_counts"][name].items()))


# --------------------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------------------


def best_of_n(ours: Ours, rm_host: dict, plan: Plan) -> dict:
  """Seconds for sampling n per prompt + scoring all candidates with the RM + the argmax."""
  prompts = np.random.default_rng(5).integers(2, ours.config.vocab_size,
                                              (BATCH, PROMPT_LEN)).astype(np.int32)
  out = {}
  for n in plan.bon_ns:
    ours.best_of_n(rm_host, prompts, n, NEW_TOKENS, 0)  # compile
    times = [timed_value(lambda: ours.best_of_n(rm_host, prompts, n, NEW_TOKENS, r + 1))[0]
             for r in range(plan.bon_repeats)]
    out[str(n)] = statistics.median(times)
    log(f"best-of-{n}: {out[str(n)]:.2f} s for {BATCH} prompts")
  return out


def sharding(plan: Plan) -> dict:
  env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") +
                                    " --xla_force_host_platform_device_count=8").strip())
  proc = subprocess.run([sys.executable, str(REPO / "bench" / "sharding.py"), "--steps",
                         str(plan.sharding_steps)], env=env, capture_output=True, text=True,
                        check=False)
  if proc.returncode:
    raise SystemExit(f"bench/sharding.py failed:\n{proc.stderr[-3000:]}")
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  log(f"sharding: 1 device {out['median_step_s']['1'] * 1e3:.0f} ms, 8 fake devices "
      f"{out['median_step_s']['8'] * 1e3:.0f} ms per step -> overhead {out['overhead']:+.1%}")
  return out


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------


def summarise(results: dict) -> None:
  peak = max(v for v in results["peak_gflops"].values())
  results["peak_gflops_used"] = peak
  results["sampling_ratio_vs_hf"] = {k: v["ratio"] for k, v in results["sampling"].items()}
  results["train_ratio_vs_hf"] = {k: v["ratio"] for k, v in results["train"].items()}
  results["mfu_train"] = {k: v["model_flops_per_step"] / v["ours"]["median_step_s"] / 1e9 / peak
                          for k, v in results["train"].items()}
  results["mfu_train_hf"] = {k: v["model_flops_per_step"] / v["hf"]["median_step_s"] / 1e9 / peak
                             for k, v in results["train"].items()}
  largest = {}
  for key, v in results["sampling"].items():
    config = key.split("/")[0]
    if v["n"] >= largest.get(config, (0, None))[0]:
      largest[config] = (v["n"], key)
  results["mfu_decode"] = {key: results["sampling"][key]["model_flops"] /
                           results["sampling"][key]["ours"]["median_s"] / 1e9 / peak
                           for _, key in largest.values()}
  results["mfu_decode_hf"] = {key: results["sampling"][key]["model_flops"] /
                              results["sampling"][key]["hf"]["median_s"] / 1e9 / peak
                              for _, key in largest.values()}
  results["bon_seconds"] = results.pop("bon", {})
  results["sharding_overhead"] = results["sharding"]["overhead"]
  results["goals"] = goals.against(results)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--quick", action="store_true", help="mt5_tiny, n = 16, one repetition")
  p.add_argument("--output", default="bench/results.json")
  args = p.parse_args()
  plan = QUICK if args.quick else FULL
  threads = peer_hf.set_threads()
  results = {"mode": "quick" if args.quick else "full", "plan": dataclasses.asdict(plan),
             "machine": machine(threads), "peak_gflops": {}, "weights_match": {},
             "sampling": {}, "train": {}, "flop_counts": {},
             "notes": [
                 "EOS: the LM head's EOS column is zeroed in the shared weights, so neither side "
                 "samples EOS; both keep their normal stopping rule and decode every row to "
                 f"{NEW_TOKENS} tokens. Tokens = rows x decoding steps run, for both sides.",
                 "Sampling: temperature 1, no top-k / top-p on both sides; ours uses its "
                 "one-encoder-pass-per-prompt sampler, HF generate(num_return_sequences=n).",
                 "mt5_small sampling: 1 timed repetition; HF warm-up with max_new_tokens=2, ours "
                 "a full warm-up run (it compiles).",
                 "RM step: a batch of pairs; both sides run one encoder pass per prompt and two "
                 "decoder rows (chosen, rejected); tokens = batch x (input + 2 x target).",
                 "MFU: analytic matmul FLOPs (bench/flops.py) / median time / peak, peak = the "
                 "best float32 matmul GFLOP/s measured in this run (JAX or PyTorch)."]}
  log(f"mode {results['mode']}; {results['machine']['cpu_model']}, "
      f"{os.cpu_count()} cores, torch threads {threads['torch_num_threads']}")
  load = os.getloadavg()[0]
  if load > 0.5:
    # PyTorch's OpenMP threads slow down many times over when a core is taken; JAX about 2x.
    results["notes"].append(f"machine busy at start (load average {load:.2f}): figures, the "
                            "PyTorch ones above all, are not representative")
    log(f"WARNING: load average {load:.2f}: other work is running; results will be noisy")
  results["peak_gflops"].update(measure_peak(plan.peak_sizes))
  for name in plan.configs:
    run_config(name, plan, results)
    gc.collect()
  results["sharding"] = sharding(plan)
  # The peak again at the end: the machine may have been busier at the start.
  results["peak_gflops"].update({f"{k}/end": v for k, v in
                                 measure_peak(plan.peak_sizes).items()})
  summarise(results)
  results["machine"]["load_average_at_end"] = os.getloadavg()
  results["wall_s"] = time.perf_counter() - START
  out = pathlib.Path(args.output)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=2))
  log(f"wrote {out}")
  for key in ("sampling_ratio_vs_hf", "train_ratio_vs_hf", "mfu_train", "mfu_decode",
              "bon_seconds", "sharding_overhead"):
    print(f"  {key}: {json.dumps(results[key])}", flush=True)
  for key, goal in results["goals"].items():
    value = goal.get("ratio", goal.get("mfu"))
    needed = f" (would need MFU {goal['mfu_needed']:.0%})" if "mfu_needed" in goal else ""
    print(f"  goal {key}: {value:.2f} against {goal['goal']:g}: "
          f"{'met' if goal['met'] else 'missed'}{needed}", flush=True)


if __name__ == "__main__":
  main()
