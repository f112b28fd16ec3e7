"""Confidence intervals and agreement against loop references, coverage, and determinism."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from xlalign_jax import stats


def _ref_bootstrap(values, stat, n_resamples, confidence, seed):
  """Percentile bootstrap, one resample at a time, drawing from the same generator stream."""
  rng = np.random.default_rng(seed)
  indices = rng.integers(0, len(values), size=(n_resamples, len(values)))
  replicates = [stat(np.asarray([values[i] for i in row])) for row in indices]
  tail = 100 * (1 - confidence) / 2
  return stat(values), np.percentile(replicates, tail), np.percentile(replicates, 100 - tail)


@pytest.mark.parametrize("stat", [np.mean, np.median])
def test_bootstrap_ci_matches_loop_reference(stat):
  values = np.random.default_rng(0).choice([0.0, 0.5, 1.0], size=40)  # win / tie / loss scores
  out = stats.bootstrap_ci(values, stat, n_resamples=300, confidence=0.9, seed=3)
  np.testing.assert_allclose(out, _ref_bootstrap(values, stat, 300, 0.9, 3), rtol=1e-12)
  assert out[1] <= out[0] <= out[2]


def test_bootstrap_ci_is_deterministic_for_a_seed():
  values = np.random.default_rng(1).normal(size=30)
  assert stats.bootstrap_ci(values, seed=7) == stats.bootstrap_ci(values, seed=7)
  assert stats.bootstrap_ci(values, seed=7) != stats.bootstrap_ci(values, seed=8)


def test_bootstrap_ci_coverage_on_a_known_distribution():
  # 200 small experiments drawn from Exponential(1) (true mean 1): the 95% interval should contain
  # the truth in about 95% of them. The percentile bootstrap under-covers a little at n = 40 on a
  # skewed distribution, and 200 trials have a standard error of ~1.5%, hence the loose band.
  rng = np.random.default_rng(2024)
  hits = 0
  for trial in range(200):
    _, low, high = stats.bootstrap_ci(rng.exponential(1.0, size=40), n_resamples=1000, seed=trial)
    hits += low <= 1.0 <= high
  assert 0.85 <= hits / 200 <= 0.99


def test_paired_bootstrap_ci():
  rng = np.random.default_rng(3)
  difficulty = rng.normal(size=60)  # shared per-instance effect that pairing cancels
  a = difficulty + 0.3 + 0.2 * rng.normal(size=60)
  b = difficulty + 0.2 * rng.normal(size=60)
  point, low, high = stats.paired_bootstrap_ci(a, b, n_resamples=500, seed=5)

  ref_rng = np.random.default_rng(5)
  indices = ref_rng.integers(0, 60, size=(500, 60))
  replicates = [np.mean([a[i] for i in row]) - np.mean([b[i] for i in row]) for row in indices]
  np.testing.assert_allclose([point, low, high],
                             [a.mean() - b.mean(),
                              np.percentile(replicates, 2.5),
                              np.percentile(replicates, 97.5)], rtol=1e-12)
  assert 0.0 < low < 0.3 < high
  # For the mean, the paired interval is the interval of per-instance differences.
  np.testing.assert_allclose([point, low, high],
                             stats.bootstrap_ci(a - b, n_resamples=500, seed=5), rtol=1e-12)
  # Unpaired resampling would be far wider: the shared difficulty dominates each mean's spread.
  _, low_a, high_a = stats.bootstrap_ci(a, n_resamples=500, seed=5)
  assert high - low < 0.5 * (high_a - low_a)
  with pytest.raises(ValueError, match="one length"):
    stats.paired_bootstrap_ci(a, b[:-1])


def test_bootstrap_rejects_bad_input():
  with pytest.raises(ValueError, match="non-empty 1-D"):
    stats.bootstrap_ci([])
  with pytest.raises(ValueError, match="confidence"):
    stats.bootstrap_ci([1.0, 2.0], confidence=95)


@pytest.mark.parametrize("successes,trials", [(0, 10), (3, 10), (10, 10), (57, 80), (1, 1)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_binomial_ci_is_wilson(successes, trials, confidence):
  p, low, high = stats.binomial_ci(successes, trials, confidence)
  # Wilson interval from its definition: the p0 for which |p - p0| / sqrt(p0 (1 - p0) / n) = z,
  # i.e. the roots of a quadratic in p0.
  z = scipy_stats.norm.ppf(1 - (1 - confidence) / 2)
  phat = successes / trials
  qa = 1 + z * z / trials
  qb = -(2 * phat + z * z / trials)
  qc = phat * phat
  disc = math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))
  np.testing.assert_allclose([p, low, high],
                             [phat, (-qb - disc) / (2 * qa), (-qb + disc) / (2 * qa)], atol=1e-12)
  scipy_ci = scipy_stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
  np.testing.assert_allclose([low, high], [scipy_ci.low, scipy_ci.high], atol=1e-9)
  with pytest.raises(ValueError):
    stats.binomial_ci(trials + 1, trials)


def test_agreement():
  a = ["A", "B", "tie", "A", "B"]
  b = ["A", "A", "tie", "A", "A"]
  assert stats.agreement(a, b) == 3 / 5
  assert stats.agreement([1.0, 0.5, 0.0], [1.0, 0.5, 0.0]) == 1.0
  with pytest.raises(ValueError):
    stats.agreement([1, 2], [1, 2, 3])


def _ref_kendall_tau_b(a, b):
  concordant = discordant = ties_a = ties_b = 0
  for i, j in itertools.combinations(range(len(a)), 2):
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    if da == 0 and db == 0:
      continue
    if da == 0:
      ties_a += 1
    elif db == 0:
      ties_b += 1
    elif da == db:
      concordant += 1
    else:
      discordant += 1
  return (concordant - discordant) / math.sqrt(
      (concordant + discordant + ties_a) * (concordant + discordant + ties_b))


def test_kendall_tau():
  rng = np.random.default_rng(4)
  a = rng.integers(0, 5, size=12).astype(float)  # with ties
  b = a + rng.normal(size=12)
  np.testing.assert_allclose(stats.kendall_tau(a, b), _ref_kendall_tau_b(a, b), rtol=1e-12)
  # The paper's two rows of the grid rank the target languages almost identically.
  en = [56.4, 55.5, 66.1, 70.7, 67.2, 63.1]
  de = [52.3, 50.8, 63.0, 66.7, 63.0, 60.4]
  np.testing.assert_allclose(stats.kendall_tau(en, de), _ref_kendall_tau_b(en, de), rtol=1e-12)
  assert stats.kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0


def _ref_cluster_replicates(groups, n_resamples, seed):
  """Each replicate's instance indices: the members of each drawn group, one draw at a time, groups
  numbered in their labels' sorted order."""
  labels = sorted(set(groups))
  members = [[i for i, g in enumerate(groups) if g == label] for label in labels]
  draws = np.random.default_rng(seed).integers(0, len(labels), size=(n_resamples, len(labels)))
  return [[i for d in row for i in members[d]] for row in draws]


def _clustered_sample(n_groups=30, seed=4):
  """Win scores whose groups (of 1-6 instances) share most of their luck."""
  rng = np.random.default_rng(seed)
  sizes = rng.integers(1, 7, size=n_groups)
  groups = np.repeat([f"tree-{g:02d}" for g in range(n_groups)], sizes)
  group_luck = rng.random(n_groups)[np.repeat(np.arange(n_groups), sizes)]
  values = (group_luck + 0.2 * rng.random(groups.size) > 0.6).astype(np.float64)
  return values, groups


def test_cluster_bootstrap_matches_loop_reference():
  values, groups = _clustered_sample()
  rows = _ref_cluster_replicates(list(groups), 400, 6)
  replicates = [np.mean(values[row]) for row in rows]
  want = [values.mean(), np.percentile(replicates, 2.5), np.percentile(replicates, 97.5)]
  got = stats.bootstrap_ci(values, n_resamples=400, seed=6, groups=groups)
  np.testing.assert_allclose(got, want, rtol=1e-12)
  # Paired: the interval of the per-instance differences, over the same groups.
  other = np.roll(values, 3)
  np.testing.assert_allclose(
      stats.paired_bootstrap_ci(values, other, n_resamples=400, seed=6, groups=groups),
      stats.bootstrap_ci(values - other, n_resamples=400, seed=6, groups=groups), rtol=1e-12)
  # Groups that share their luck: resampling instances as if independent is too narrow.
  _, low, high = got
  _, low_i, high_i = stats.bootstrap_ci(values, n_resamples=400, seed=6)
  assert high - low > 1.3 * (high_i - low_i)


def test_cluster_bootstrap_of_singletons_is_the_instance_bootstrap():
  values = np.random.default_rng(8).normal(size=50)
  np.testing.assert_allclose(stats.bootstrap_ci(values, seed=2, groups=np.arange(50)),
                             stats.bootstrap_ci(values, seed=2), rtol=1e-12)
  assert stats.repeated_groups(np.arange(50)) is None and stats.repeated_groups(None) is None
  assert stats.repeated_groups(["a", "b", "a"]).tolist() == ["a", "b", "a"]


def test_weighted_roc_auc_is_roc_auc_of_the_repeated_instances():
  rng = np.random.default_rng(9)
  scores = np.round(rng.normal(size=40), 1)  # ties across instances
  labels = rng.random(40) < 0.4
  weights = rng.integers(0, 4, size=(25, 40)).astype(np.float64)
  for row, got in zip(weights, stats.weighted_roc_auc(scores, labels, weights)):
    repeated = np.repeat(np.arange(40), row.astype(int))
    np.testing.assert_allclose(got, stats.roc_auc(scores[repeated], labels[repeated]),
                               rtol=1e-12)


def test_cluster_auc_ci_matches_loop_reference():
  values, groups = _clustered_sample(seed=11)
  labels = values > 0.5
  scores = np.random.default_rng(12).normal(size=values.size) + labels
  baseline = np.random.default_rng(13).normal(size=values.size) + 0.5 * labels
  rows = _ref_cluster_replicates(list(groups), 300, 1)
  replicates = [stats.roc_auc(scores[r], labels[r]) - stats.roc_auc(baseline[r], labels[r])
                for r in rows]
  replicates = np.array(replicates)[np.isfinite(replicates)]
  want = [stats.roc_auc(scores, labels) - stats.roc_auc(baseline, labels),
          np.percentile(replicates, 2.5), np.percentile(replicates, 97.5)]
  np.testing.assert_allclose(stats.auc_ci(scores, labels, baseline, n_resamples=300, seed=1,
                                          groups=groups), want, rtol=1e-12)


def test_cluster_bootstrap_rejects_bad_groups():
  with pytest.raises(ValueError, match="one group per instance: \\(2,\\) groups for 3"):
    stats.bootstrap_ci([1.0, 2.0, 3.0], groups=["a", "b"])
  with pytest.raises(ValueError, match="for the mean only"):
    stats.bootstrap_ci([1.0, 2.0, 3.0], np.median, groups=["a", "a", "b"])
