"""Win rates of aligned outputs against the target-language SFT outputs, with confidence intervals.

The paper's protocol: a judge compares the aligned output with the SFT output of the same input in
both orders (LLM judges prefer whichever output they see first), and the two probabilities that
the aligned output is better are averaged:

  p_i = (P(aligned > sft | aligned shown first) + 1 - P(sft > aligned | sft shown first)) / 2
  win rate = mean_i p_i          (a hard tie counts half), 95% percentile bootstrap over instances

(or over groups of instances, `groups=`: the threads of one message tree share their start, so
whole trees are resampled).

An instance without a verdict in either order (NaN, e.g. an HTTP judge that got no answer) is
dropped and counted, never scored as a tie. Also here: instance- and ranking-level agreement
between judges, and the RM-evaluator score delta (the paper's Figure 3).

Usage:
  wr = judge_win_rate(judge, "es", inputs, aligned_outputs, sft_outputs)
  row = {"method": "bon", "source": "en", "target": "es", "judge": judge.name, **wr.as_dict()}
  agreement_row = {"judge_a": a.name, "judge_b": b.name, "method": "bon",
                   **instance_agreement(probs_a, probs_b).as_dict(),
                   **ranking_agreement(win_rates_a, win_rates_b).as_dict()}
"""
import dataclasses
import math
from typing import Hashable, Mapping, Sequence, Union

import numpy as np

from xlalign_jax import stats
from xlalign_jax.judges import Judge, Langs, RewardScorer

NAN = math.nan
Systems = Union[Mapping[Hashable, float], Sequence[float]]


@dataclasses.dataclass(frozen=True)
class Estimate:
  """A point estimate with its confidence interval, over `n` instances (`dropped` had no value)."""
  value: float
  ci_low: float
  ci_high: float
  n: int
  dropped: int = 0

  key = "value"  # the name of `value` in as_dict(), e.g. "win_rate" in results.json

  def as_dict(self) -> dict:
    row = dataclasses.asdict(self)
    return {self.key: row.pop("value"), **row}


@dataclasses.dataclass(frozen=True)
class WinRate(Estimate):
  """A both-order win rate; the single-order win rates show the judge's position bias."""
  aligned_first: float = NAN  # mean P(aligned wins) when the aligned output is shown first
  baseline_first: float = NAN  # ... when the baseline (SFT) output is shown first
  key = "win_rate"


@dataclasses.dataclass(frozen=True)
class Agreement(Estimate):
  """Share of instances where two judges prefer the same side (Wilson interval)."""
  key = "agreement"


@dataclasses.dataclass(frozen=True)
class ScoreDelta(Estimate):
  """Mean reward of the aligned outputs minus that of the baseline outputs, paired bootstrap."""
  key = "delta"


@dataclasses.dataclass(frozen=True)
class RankAgreement:
  """Kendall tau-b between two judges' win rates of the same systems (n_systems of them)."""
  kendall_tau: float
  n_systems: int

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def order_probs(judge: Judge, langs: Langs, inputs: Sequence[str], aligned: Sequence[str],
                baseline: Sequence[str]) -> np.ndarray:
  """[N, 2] P(aligned is better): column 0 with the aligned output shown first, column 1 second.

  Both orders go to the judge in one batch (an RM judge then scores each output once).
  """
  n = len(inputs)
  langs = [langs] * n if isinstance(langs, str) else list(langs)
  probs = judge.prefer_batch(langs * 2, list(inputs) * 2, list(aligned) + list(baseline),
                             list(baseline) + list(aligned))
  return np.stack([probs[:n], 1.0 - probs[n:]], axis=1)


def instance_scores(probs) -> np.ndarray:
  """[N] per-instance P(aligned is better): the mean over orders of [N, 2] probs ([N] passes).

  NaN where any order has no verdict.
  """
  probs = np.asarray(probs, dtype=np.float64)
  if probs.ndim == 2:
    return probs.mean(axis=1)  # NaN propagates: both orders are needed for bias control
  if probs.ndim != 1:
    raise ValueError(f"probs must be [N] or [N, orders], got shape {probs.shape}")
  return probs


def _kept_groups(groups, keep: np.ndarray):
  if groups is None:
    return None
  return stats.check_groups(groups, keep.size)[keep]


def _bootstrap(cls, values: np.ndarray, n_resamples: int, confidence: float, seed: int,
               groups=None, **extra) -> Estimate:
  keep = np.isfinite(values)
  kept = values[keep]
  dropped = values.size - kept.size
  if kept.size == 0:
    return cls(NAN, NAN, NAN, 0, dropped, **extra)
  point, low, high = stats.bootstrap_ci(kept, n_resamples=n_resamples, confidence=confidence,
                                        seed=seed, groups=_kept_groups(groups, keep))
  return cls(point, low, high, int(kept.size), int(dropped), **extra)


def win_rate(probs, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
             groups=None) -> WinRate:
  """Win rate with a bootstrap CI over instances, from order_probs() output (or [N] scores);
  with `groups` ([N] labels), over whole groups of instances."""
  probs = np.asarray(probs, dtype=np.float64)
  scores = instance_scores(probs)
  extra = {}
  if probs.ndim == 2 and probs.shape[1] == 2 and np.isfinite(scores).any():
    kept = probs[np.isfinite(scores)]
    extra = dict(aligned_first=float(kept[:, 0].mean()), baseline_first=float(kept[:, 1].mean()))
  return _bootstrap(WinRate, scores, n_resamples, confidence, seed, groups, **extra)


def judge_win_rate(judge: Judge, langs: Langs, inputs: Sequence[str], aligned: Sequence[str],
                   baseline: Sequence[str], **ci_kwargs) -> WinRate:
  """The win rate of `aligned` over `baseline` under `judge`, asked in both orders."""
  return win_rate(order_probs(judge, langs, inputs, aligned, baseline), **ci_kwargs)


def instance_agreement(judge_a_probs, judge_b_probs, confidence: float = 0.95) -> Agreement:
  """How often two judges prefer the same output of a pair; ties (0.5) and NaN are excluded.

  Args:
    judge_a_probs: [N] P(aligned is better) under judge A, or its [N, 2] order_probs().
    judge_b_probs: the same instances under judge B.
    confidence: of the Wilson interval.

  Returns:
    Agreement over the n instances where both judges prefer a side; dropped = the others.
  """
  a, b = instance_scores(judge_a_probs), instance_scores(judge_b_probs)
  if a.shape != b.shape:
    raise ValueError(f"the two judges need the same instances, got {a.shape} and {b.shape}")
  side_a, side_b = np.sign(a - 0.5), np.sign(b - 0.5)  # NaN stays NaN
  decided = (side_a != 0) & (side_b != 0) & np.isfinite(side_a) & np.isfinite(side_b)
  n = int(decided.sum())
  if n == 0:
    return Agreement(NAN, NAN, NAN, 0, a.size)
  same = float(stats.agreement(side_a[decided], side_b[decided]))
  point, low, high = stats.binomial_ci(same * n, n, confidence)
  return Agreement(point, low, high, n, int(a.size - n))


def ranking_agreement(win_rates_a: Systems, win_rates_b: Systems) -> RankAgreement:
  """Kendall tau between two judges' win rates of several systems (e.g. source languages).

  Mappings are matched by key (systems missing or NaN under either judge are left out);
  sequences by position.
  """
  as_map = lambda x: x if isinstance(x, Mapping) else dict(enumerate(x))
  a, b = as_map(win_rates_a), as_map(win_rates_b)
  keys = [k for k in a if k in b and np.isfinite(a[k]) and np.isfinite(b[k])]
  if len(keys) < 2:
    return RankAgreement(NAN, len(keys))
  return RankAgreement(stats.kendall_tau([a[k] for k in keys], [b[k] for k in keys]), len(keys))


def score_delta(aligned_rewards, baseline_rewards, n_resamples: int = 2000,
                confidence: float = 0.95, seed: int = 0, groups=None) -> ScoreDelta:
  """mean(r(aligned) - r(baseline)) over instances with a paired bootstrap CI (over whole groups
  with `groups`); NaN pairs dropped."""
  a = np.asarray(aligned_rewards, dtype=np.float64)
  b = np.asarray(baseline_rewards, dtype=np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError(f"need two [N] reward arrays, got {a.shape} and {b.shape}")
  keep = np.isfinite(a) & np.isfinite(b)
  dropped = int(a.size - keep.sum())
  if not keep.any():
    return ScoreDelta(NAN, NAN, NAN, 0, dropped)
  point, low, high = stats.paired_bootstrap_ci(a[keep], b[keep], n_resamples=n_resamples,
                                               confidence=confidence, seed=seed,
                                               groups=_kept_groups(groups, keep))
  return ScoreDelta(point, low, high, int(keep.sum()), dropped)


def rm_score_delta(scorer: RewardScorer, lang: str, inputs: Sequence[str],
                   aligned: Sequence[str], baseline: Sequence[str], **ci_kwargs) -> ScoreDelta:
  """The RM-evaluator score delta (the paper's Figure 3) under a target-language RM `scorer`."""
  n = len(inputs)
  if not len(aligned) == len(baseline) == n:
    raise ValueError(f"need one aligned and one baseline output per input, got {len(aligned)}, "
                     f"{len(baseline)} for {n} inputs")
  rewards = np.asarray(scorer.score(lang, list(inputs) * 2, list(aligned) + list(baseline)),
                       dtype=np.float64)
  return score_delta(rewards[:n], rewards[n:], **ci_kwargs)
