"""bench/goals.py puts a bench/run.py result against issue 8's goals."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bench import goals  # noqa: E402


def test_each_goal_is_met_or_missed_and_training_says_what_mfu_it_needs():
  results = {
      "sampling_ratio_vs_hf": {"mt5_tiny/n16": 4.9, "mt5_small/n64": 2.0},
      "train_ratio_vs_hf": {"sft/mt5_small": 0.8, "rm/mt5_tiny": 1.6},
      "mfu_train": {"sft/mt5_small": 0.52, "rm/mt5_tiny": 0.30},
      "mfu_train_hf": {"sft/mt5_small": 0.65, "rm/mt5_tiny": 0.19},
      "mfu_decode": {"mt5_tiny/n64": 0.46, "mt5_small/n64": 0.39},
  }
  out = goals.against(results)
  assert out["sampling/mt5_tiny/n16"] == {"goal": 5.0, "ratio": 4.9, "met": False}
  assert out["sampling/mt5_small/n64"]["met"]  # 2x at small, met exactly
  small = out["train/sft/mt5_small"]
  assert (small["goal"], small["met"]) == (1.5, False)
  # 1.5x transformers' speed on the same FLOPs is 1.5x its utilisation: 97.5%.
  assert small["mfu_needed"] == pytest.approx(0.975)
  assert out["train/rm/mt5_tiny"]["met"]
  # The 40% utilisation goal is for mt5_small only.
  assert out["mfu_train/sft/mt5_small"]["met"]
  assert not out["mfu_decode/mt5_small/n64"]["met"]
  assert not any(k.startswith("mfu_") and "mt5_tiny" in k for k in out)
