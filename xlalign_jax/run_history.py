"""A training run's per-step scalars, read back from its TensorBoard event files.

The trainers write every step's metrics with clu's metric writers. A run killed and resumed from
its last checkpoint writes the steps after that checkpoint again, so for each (metric, step) the
value written last is the one of the run that finished.

  read_scalars(log_dir) -> {metric: {step: value}}
  ppo_summary(scalars) -> the report's "ppo_training" fields for one PPO run
"""
import pathlib
from typing import Dict, List, Optional

import numpy as np

# The PPO metrics the report shows: the RM's reward, the sequence KL to the SFT policy, the length
# of the sampled responses (tokens) and the policy's entropy per token.
PPO_CURVES = ("reward", "kl", "response_length", "entropy")
# Kept too where the run logged them: the KL coefficient (adaptive with PPOConfig.kl_target).
OPTIONAL_PPO_CURVES = ("kl_beta",)
MAX_CURVE_POINTS = 500  # curves of long runs are thinned to this many steps in results.json


def read_scalars(log_dir) -> Dict[str, Dict[int, float]]:
  """{metric: {step: value}} from every event file under `log_dir`; {} when there is none."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (slow; the report imports this)
  from tensorflow.core.util import event_pb2  # pylint: disable=g-import-not-at-top
  latest: Dict[str, Dict[int, tuple]] = {}  # metric -> step -> (wall time, value)
  for path in sorted(pathlib.Path(log_dir).glob("events.out.tfevents.*")):
    for record in tf.data.TFRecordDataset(str(path)):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        number = (float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                  else float(value.simple_value))
        seen = latest.setdefault(value.tag, {}).get(event.step)
        if seen is None or event.wall_time >= seen[0]:
          latest[value.tag][event.step] = (event.wall_time, number)
  return {tag: {step: v for step, (_, v) in sorted(by_step.items())}
          for tag, by_step in latest.items()}


def ppo_summary(scalars: Dict[str, Dict[int, float]], window: int = 10,
                max_kl: Optional[float] = None) -> dict:
  """Means of the first and last `window` steps of each PPO_CURVES metric ("reward_first",
  "reward_last", ...; also of OPTIONAL_PPO_CURVES where logged), the number of steps, the largest
  KL ("kl_max"), with `max_kl` the number of steps above it ("max_kl", "steps_above_max_kl"),
  and the curves themselves ("curves": {"step": [...], metric: [...]}, at most MAX_CURVE_POINTS
  steps, the last one always kept)."""
  missing = [m for m in PPO_CURVES if not scalars.get(m)]
  if missing:
    raise ValueError(f"no per-step {', '.join(missing)} in the run's TensorBoard events")
  steps = sorted(scalars["reward"])
  summary = {"steps": len(steps)}
  curves = PPO_CURVES + tuple(m for m in OPTIONAL_PPO_CURVES if scalars.get(m))
  for metric in curves:
    values = np.array([scalars[metric][s] for s in steps if s in scalars[metric]])
    summary[f"{metric}_first"] = float(values[:window].mean())
    summary[f"{metric}_last"] = float(values[-window:].mean())
  kl = np.array(list(scalars["kl"].values()))
  summary["kl_max"] = float(kl.max())
  if max_kl is not None:
    summary.update(max_kl=max_kl, steps_above_max_kl=int((kl > max_kl).sum()))
  stride = -(-len(steps) // MAX_CURVE_POINTS)  # ceil
  kept: List[int] = steps[::-1][::stride][::-1]  # thinned from the end, so the last step stays
  summary["curves"] = {"step": kept, **{m: [scalars[m].get(s, float("nan")) for s in kept]
                                        for m in curves}}
  return summary
