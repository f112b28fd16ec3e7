"""The sampler's draw alone: jax.random.categorical (a Gumbel per vocabulary entry) vs
decoding.sample_categorical (one uniform per row, two-level inverse CDF), medians of 5.

  python bench/draw.py
"""
import pathlib
import statistics
import sys

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bench.sft_step import timed  # noqa: E402
from xlalign_jax import decoding  # noqa: E402


def median_ms(fn, *args) -> float:
  jax.block_until_ready(fn(*args))  # compile
  return statistics.median(timed(lambda: jax.block_until_ready(fn(*args)))
                           for _ in range(5)) * 1e3


def main():
  key = jax.random.PRNGKey(1)
  for rows, vocab, label in ((128, 250112, "mt5_small, B 8 x n 16"),
                             (512, 4096, "mt5_tiny, B 8 x n 64")):
    logits = jax.random.normal(jax.random.PRNGKey(0), (rows, vocab)) * 5
    gumbel = median_ms(jax.jit(lambda k, l: jax.random.categorical(k, l, axis=-1)), key, logits)
    ours = median_ms(jax.jit(decoding.sample_categorical), key, logits)
    print(f"{label}: {rows} x {vocab}: jax.random.categorical {gumbel:.1f} ms, "
          f"sample_categorical {ours:.1f} ms, x{gumbel / ours:.1f}", flush=True)


if __name__ == "__main__":
  main()
