"""Issue 8's goals, and where a `bench/run.py` result stands against each (its "goals" key)."""

# Our tokens/s over transformers' at the same dimensions, weights and batch.
SAMPLING_GOALS = {"mt5_tiny": 5.0, "mt5_small": 2.0}
TRAIN_GOAL = 1.5
MFU_GOAL = 0.40  # model FLOP utilisation at mt5_small dimensions, training and decoding


def against(results: dict) -> dict:
  """Each of issue 8's goals against this run. A training ratio of 1.5 needs our step to run at
  1.5x transformers' model FLOP utilisation (`mfu_needed`); above 1.0 no implementation of the
  same FLOPs could reach it on this machine."""
  out = {}
  for key, ratio in results["sampling_ratio_vs_hf"].items():
    goal = SAMPLING_GOALS[key.split("/")[0]]
    out[f"sampling/{key}"] = {"goal": goal, "ratio": ratio, "met": ratio >= goal}
  for key, ratio in results["train_ratio_vs_hf"].items():
    out[f"train/{key}"] = {"goal": TRAIN_GOAL, "ratio": ratio, "met": ratio >= TRAIN_GOAL,
                           "mfu": results["mfu_train"][key],
                           "mfu_needed": TRAIN_GOAL * results["mfu_train_hf"][key]}
  for kind in ("mfu_train", "mfu_decode"):
    for key, mfu in results[kind].items():
      if "mt5_small" in key:
        out[f"{kind}/{key}"] = {"goal": MFU_GOAL, "mfu": mfu, "met": mfu >= MFU_GOAL}
  return out
