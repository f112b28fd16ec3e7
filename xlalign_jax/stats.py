"""Confidence intervals and judge agreement for evaluation, in NumPy and SciPy.

A win rate is a mean over instances of per-instance scores (1 win, 0.5 tie, 0 loss); its
uncertainty comes from the finite set of instances, so the intervals here resample instances
(percentile bootstrap) or model them as Bernoulli trials (Wilson). Everything is deterministic for a
seed, so a report can be regenerated exactly.

Instances are not always independent: the rated summaries of one article, the threads and ranked
pairs of one message tree share their input. Given `groups` (each instance's article or tree), the
bootstrap resamples whole groups (the cluster bootstrap), so a group's shared luck widens the
interval as it should instead of counting as independent evidence.
"""
from typing import Callable, Optional, Tuple

import numpy as np
from scipy import stats as scipy_stats

Interval = Tuple[float, float, float]  # (point, low, high)


def _as_1d(values, name: str) -> np.ndarray:
  values = np.asarray(values, dtype=np.float64)
  if values.ndim != 1 or values.size == 0:
    raise ValueError(f"{name} must be a non-empty 1-D array, got shape {values.shape}")
  return values


def _percentile_interval(point, replicates: np.ndarray, confidence: float) -> Interval:
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")
  tail = (1.0 - confidence) / 2.0
  low, high = np.quantile(replicates, [tail, 1.0 - tail])
  return float(point), float(low), float(high)


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
  # One [n_resamples, n] draw, so every statistic is computed vectorised along axis 1
  # (memory: 8 * n_resamples * n bytes).
  return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def cluster_weights(groups, n_resamples: int, seed: int) -> np.ndarray:
  """[n_resamples, N]: how many times each instance is drawn when whole groups are resampled.

  Groups are numbered in the sorted order of their labels, and drawn as _resample_indices draws
  instances: with every label distinct the weights count exactly its draws.
  """
  _, group_of = np.unique(np.asarray(groups), return_inverse=True)
  group_of = group_of.ravel()
  n_groups = int(group_of.max()) + 1
  idx = _resample_indices(n_groups, n_resamples, seed)
  counts = np.zeros((n_resamples, n_groups))
  np.add.at(counts, (np.arange(n_resamples)[:, None], idx), 1.0)
  return counts[:, group_of]


def repeated_groups(groups) -> Optional[np.ndarray]:
  """`groups` (None, or [N] labels) where some group holds more than one instance, else None: with
  every label distinct the cluster bootstrap is the instance bootstrap."""
  if groups is None:
    return None
  groups = np.asarray(groups)
  return groups if len(np.unique(groups)) < groups.size else None


def check_groups(groups, n: int) -> np.ndarray:
  """`groups` as an array, or a ValueError unless it holds one label per instance."""
  groups = np.asarray(groups)
  if groups.shape != (n,):
    raise ValueError(f"need one group per instance: {groups.shape} groups for {n} instances")
  return groups


def _groups_for(groups, n: int, stat: Callable = np.mean) -> np.ndarray:
  groups = check_groups(groups, n)
  if stat is not np.mean:
    raise ValueError("the cluster bootstrap (groups) is implemented for the mean only")
  return groups


def _weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
  return weights @ values / weights.sum(axis=1)


def bootstrap_ci(values,
                 stat: Callable = np.mean,
                 n_resamples: int = 2000,
                 confidence: float = 0.95,
                 seed: int = 0,
                 groups=None) -> Interval:
  """Percentile-bootstrap confidence interval of `stat` over instances.

  Args:
    values: [N] per-instance values (e.g. win scores).
    stat: reduction taking `axis=` like np.mean or np.median.
    n_resamples: bootstrap replicates.
    confidence: e.g. 0.95 for a 95% interval.
    seed: the interval is a deterministic function of the seed.
    groups: optional [N] labels of the groups that instances come in (e.g. their article);
      whole groups are resampled. With the mean only.

  Returns:
    (point, low, high): stat(values) and the percentile interval.
  """
  values = _as_1d(values, "values")
  if groups is not None:
    weights = cluster_weights(_groups_for(groups, values.size, stat), n_resamples, seed)
    return _percentile_interval(np.mean(values), _weighted_means(values, weights), confidence)
  idx = _resample_indices(values.size, n_resamples, seed)
  return _percentile_interval(stat(values), stat(values[idx], axis=1), confidence)


def paired_bootstrap_ci(a,
                        b,
                        stat: Callable = np.mean,
                        n_resamples: int = 2000,
                        confidence: float = 0.95,
                        seed: int = 0,
                        groups=None) -> Interval:
  """Percentile-bootstrap interval of stat(a) - stat(b), a and b measured on the same instances.

  Both are resampled with the same instance indices, so what the instances share (an easy prompt is
  easy for both systems) cancels, and the interval is narrower than one from independent resampling.

  Args:
    a: [N] per-instance values of the first system.
    b: [N] values of the second system on the same instances, in the same order.
    stat: reduction taking `axis=` like np.mean.
    n_resamples: bootstrap replicates.
    confidence: e.g. 0.95.
    seed: the interval is a deterministic function of the seed.
    groups: optional [N] group labels, as in bootstrap_ci.

  Returns:
    (point, low, high) for the difference.
  """
  a, b = _as_1d(a, "a"), _as_1d(b, "b")
  if a.shape != b.shape:
    raise ValueError(f"paired values need one length, got {a.shape} and {b.shape}")
  if groups is not None:
    weights = cluster_weights(_groups_for(groups, a.size, stat), n_resamples, seed)
    return _percentile_interval(np.mean(a) - np.mean(b), _weighted_means(a, weights) -
                                _weighted_means(b, weights), confidence)
  idx = _resample_indices(a.size, n_resamples, seed)
  return _percentile_interval(stat(a) - stat(b),
                              stat(a[idx], axis=1) - stat(b[idx], axis=1), confidence)


def roc_auc(scores, labels, axis: int = -1) -> np.ndarray:
  """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

  The threshold-free counterpart of accuracy (Mann-Whitney U over average ranks), so a scorer
  whose scale is shifted, e.g. a reward model read in another language, is judged on its ranking.
  Vectorised along `axis`; NaN where a slice lacks positives or negatives.
  """
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels, bool)
  ranks = scipy_stats.rankdata(scores, axis=axis)
  positives = labels.sum(axis=axis)
  negatives = labels.shape[axis] - positives
  rank_sum = np.where(labels, ranks, 0.0).sum(axis=axis)
  with np.errstate(invalid="ignore", divide="ignore"):
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def weighted_roc_auc(scores, labels, weights) -> np.ndarray:
  """roc_auc of the instances repeated by each row of `weights` [R, N] (a bootstrap's draw
  counts): every (positive, negative) pair counts the product of its weights. [R]; NaN where a row
  lacks positives or negatives."""
  order = np.argsort(scores, kind="stable")
  scores, labels, weights = scores[order], labels[order], weights[:, order]
  tied = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])  # the first of each score
  pos = np.add.reduceat(np.where(labels, weights, 0.0), tied, axis=1)
  neg = np.add.reduceat(np.where(labels, 0.0, weights), tied, axis=1)
  below = np.cumsum(neg, axis=1) - neg
  with np.errstate(invalid="ignore", divide="ignore"):
    return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def auc_ci(scores, labels, baseline_scores=None, n_resamples: int = 2000,
           confidence: float = 0.95, seed: int = 0, groups=None) -> Interval:
  """ROC AUC with its percentile-bootstrap interval over instances; with `baseline_scores`, that
  of AUC(scores) - AUC(baseline_scores), both on the same resampled instances (paired).

  Args:
    scores: [N] scores, higher meaning more likely positive.
    labels: [N] booleans; both classes must occur.
    baseline_scores: optional [N] scores of a baseline on the same instances.
    n_resamples, confidence, seed, groups: as in bootstrap_ci. Resamples that miss a class are
      dropped.

  Returns:
    (auc or difference, low, high).
  """
  scores = _as_1d(scores, "scores")
  labels = np.asarray(labels, bool)
  if labels.shape != scores.shape or labels.all() or not labels.any():
    raise ValueError("roc auc needs one label per score and both classes")
  if groups is not None:
    weights = cluster_weights(_groups_for(groups, scores.size), n_resamples, seed)
    resampled_auc = lambda s: weighted_roc_auc(s, labels, weights)
  else:
    idx = _resample_indices(scores.size, n_resamples, seed)
    resampled_auc = lambda s: roc_auc(s[idx], labels[idx], axis=1)
  point, replicates = roc_auc(scores, labels), resampled_auc(scores)
  if baseline_scores is not None:
    baseline_scores = _as_1d(baseline_scores, "baseline_scores")
    point = point - roc_auc(baseline_scores, labels)
    replicates = replicates - resampled_auc(baseline_scores)
  return _percentile_interval(point, replicates[np.isfinite(replicates)], confidence)


def binomial_ci(successes: float, trials: int, confidence: float = 0.95) -> Interval:
  """Wilson score interval for a proportion such as an accuracy.

  Wilson rather than the normal (Wald) interval: it stays inside [0, 1] and keeps its coverage for
  accuracies near 0 or 1 and for small samples.

  Args:
    successes: number of correct instances (0 <= successes <= trials).
    trials: number of instances (> 0).
    confidence: e.g. 0.95.

  Returns:
    (proportion, low, high).
  """
  if trials <= 0 or not 0 <= successes <= trials:
    raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")
  z = scipy_stats.norm.ppf(0.5 + confidence / 2.0)
  p = successes / trials
  z2_n = z * z / trials
  centre = (p + z2_n / 2.0) / (1.0 + z2_n)
  half_width = z / (1.0 + z2_n) * np.sqrt(p * (1.0 - p) / trials + z2_n / (4.0 * trials))
  return float(p), float(max(0.0, centre - half_width)), float(min(1.0, centre + half_width))


def agreement(a, b) -> float:
  """Fraction of instances on which two judges give the same verdict (any comparable labels)."""
  a, b = np.asarray(a), np.asarray(b)
  if a.shape != b.shape or a.ndim != 1 or a.size == 0:
    raise ValueError(f"need two non-empty 1-D arrays of one length, got {a.shape} and {b.shape}")
  return float(np.mean(a == b))


def kendall_tau(a, b) -> float:
  """Kendall's tau-b between two rankings of the same items (e.g. two judges' win-rate grids).

  tau-b corrects for ties; it is NaN when either input is constant.
  """
  a, b = _as_1d(a, "a"), _as_1d(b, "b")
  if a.shape != b.shape or a.size < 2:
    raise ValueError(f"need two arrays of one length >= 2, got {a.shape} and {b.shape}")
  return float(scipy_stats.kendalltau(a, b).statistic)
