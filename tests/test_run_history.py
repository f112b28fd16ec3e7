"""run_history: per-step scalars back from TensorBoard events as the trainers write them, the
resumed run's values winning, and the report's PPO summary against NumPy."""
import numpy as np
import pytest
from clu import metric_writers

from xlalign_jax import run_history


def _write(log_dir, steps, offset):
  """Steps' scalars as the PPO trainer writes them (clu's default writer, synchronous)."""
  writer = metric_writers.create_default_writer(str(log_dir), asynchronous=False)
  for step in steps:
    writer.write_scalars(step, {"reward": step + offset, "kl": 0.5 * step})
  writer.flush()
  writer.close()


def test_a_resumed_run_rewrites_the_steps_after_its_checkpoint_and_those_values_count(tmp_path):
  _write(tmp_path, range(1, 5), offset=0.0)  # killed after step 4, last checkpoint at step 2
  _write(tmp_path, range(3, 6), offset=0.25)  # resumed: steps 3-5 again, other values
  assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
  scalars = run_history.read_scalars(tmp_path)
  assert scalars["reward"] == {1: 1.0, 2: 2.0, 3: 3.25, 4: 4.25, 5: 5.25}
  assert scalars["kl"] == {s: 0.5 * s for s in range(1, 6)}


def test_no_events_reads_as_no_scalars(tmp_path):
  assert run_history.read_scalars(tmp_path / "missing") == {}


def test_ppo_summary_means_and_thinned_curves_against_numpy():
  rng = np.random.default_rng(0)
  steps = 1234
  values = {m: rng.normal(size=steps) for m in run_history.PPO_CURVES}
  scalars = {m: {s + 1: float(v[s]) for s in range(steps)} for m, v in values.items()}
  summary = run_history.ppo_summary(scalars, window=10)
  assert summary["steps"] == steps
  for m, v in values.items():
    assert summary[f"{m}_first"] == pytest.approx(v[:10].mean(), abs=1e-12)
    assert summary[f"{m}_last"] == pytest.approx(v[-10:].mean(), abs=1e-12)
  kept = summary["curves"]["step"]
  assert len(kept) <= run_history.MAX_CURVE_POINTS and kept[-1] == steps
  assert np.all(np.diff(kept) == 3)  # ceil(1234 / 500)
  for m, v in values.items():
    np.testing.assert_array_equal(summary["curves"][m], v[np.array(kept) - 1])


def test_ppo_summary_keeps_the_kl_coefficient_where_the_run_logged_it():
  scalars = {m: {s: 1.0 for s in range(1, 31)} for m in run_history.PPO_CURVES}
  assert not any(k.startswith("kl_beta") for k in run_history.ppo_summary(scalars))
  scalars["kl_beta"] = {s: 0.1 * 1.02 ** (s - 1) for s in range(1, 31)}
  summary = run_history.ppo_summary(scalars, window=10)
  assert summary["kl_beta_first"] == pytest.approx(np.mean(0.1 * 1.02 ** np.arange(10)))
  assert summary["kl_beta_last"] == pytest.approx(np.mean(0.1 * 1.02 ** np.arange(20, 30)))
  assert summary["curves"]["kl_beta"] == [scalars["kl_beta"][s] for s in range(1, 31)]


def test_ppo_summary_names_the_missing_metrics():
  with pytest.raises(ValueError, match="no per-step kl, entropy"):
    run_history.ppo_summary({"reward": {1: 0.0}, "response_length": {1: 3.0}})


def test_ppo_summary_counts_the_steps_above_a_kl_bound():
  kl = [0.0, 0.5, 3.0, 7.5, 2.0, 9.0]
  scalars = {m: {s + 1: 1.0 for s in range(len(kl))} for m in run_history.PPO_CURVES}
  scalars["kl"] = {s + 1: v for s, v in enumerate(kl)}
  assert "steps_above_max_kl" not in run_history.ppo_summary(scalars)
  summary = run_history.ppo_summary(scalars, max_kl=2.0)
  assert (summary["max_kl"], summary["steps_above_max_kl"], summary["kl_max"]) == (2.0, 3, 9.0)
