"""Win rates: position-bias control by both-order averaging (acceptance), NaN handling, interval
coverage, judge agreement and the RM score delta."""
import math

import numpy as np
import pytest

from synthetic_summaries import summaries
from xlalign_jax import judges, stats, winrate


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  return summaries(tmp_path_factory.mktemp("world"), articles=300)


def test_both_orders_recover_the_oracle_win_rate_under_a_strong_position_bias(world):
  """Acceptance: a sharp judge that calls 95% of ties for the output it sees first misleads in
  either single order; averaging both orders recovers the oracle's win rate.

  The two systems tie on about half the articles (both perfect), where the bias bites hardest.
  """
  oracle, inputs, systems = world
  aligned, sft = systems["reference"], systems["mt5_xxl"]
  truth = winrate.judge_win_rate(judges.OracleJudge(oracle), "es", inputs, aligned, sft)
  biased = judges.SimulatedLLMJudge(oracle, noise=0.01, position_bias=0.9, temperature=0.01)
  wr = winrate.judge_win_rate(biased, "es", inputs, aligned, sft)
  assert wr.n == 300 and wr.dropped == 0
  assert wr.ci_low <= truth.value <= wr.ci_high and abs(wr.value - truth.value) < 0.02
  # Each single order lies far outside the both-order interval.
  assert wr.aligned_first > wr.ci_high + 0.1 and wr.aligned_first - truth.value > 0.12
  assert wr.baseline_first < wr.ci_low - 0.1 and truth.value - wr.baseline_first > 0.12
  single = winrate.win_rate(winrate.order_probs(biased, "es", inputs, aligned, sft)[:, 0])
  assert single.value == pytest.approx(wr.aligned_first)
  assert not single.ci_low <= truth.value <= single.ci_high


@pytest.mark.parametrize("aligned,sft", [("mt5_xxl", "palm_1shot"), ("palm_1shot", "mt5_small")])
def test_both_orders_recover_the_unbiased_judge_when_it_is_noisy(world, aligned, sft):
  oracle, inputs, systems = world
  args = "es", inputs, systems[aligned], systems[sft]
  unbiased = winrate.judge_win_rate(judges.SimulatedLLMJudge(oracle, noise=0.05), *args)
  biased = winrate.judge_win_rate(
      judges.SimulatedLLMJudge(oracle, noise=0.05, position_bias=0.9), *args)
  assert biased.ci_low <= unbiased.value <= biased.ci_high
  assert abs(biased.value - unbiased.value) < 0.015
  assert biased.aligned_first - biased.baseline_first > 0.08


def test_oracle_win_rate_counts_ties_half(world):
  oracle, inputs, systems = world
  wr = winrate.judge_win_rate(judges.OracleJudge(oracle), "es", inputs, systems["reference"],
                              systems["reference"])
  assert (wr.value, wr.ci_low, wr.ci_high) == (0.5, 0.5, 0.5)
  assert winrate.judge_win_rate(judges.OracleJudge(oracle), "es", inputs, systems["reference"],
                                systems["t5_base"]).value == 1.0


def test_order_probs_puts_the_aligned_output_first_then_second():
  class FirstWins(judges.Judge):
    name = "first"

    def prefer(self, lang, input_text, output_a, output_b):
      return 0.9
  probs = winrate.order_probs(FirstWins(), "es", ["x", "y"], ["a1", "a2"], ["b1", "b2"])
  np.testing.assert_allclose(probs, [[0.9, 0.1], [0.9, 0.1]])
  assert winrate.win_rate(probs).value == pytest.approx(0.5)


def test_nan_verdicts_are_dropped_and_counted():
  probs = np.array([[1.0, 1.0], [0.0, np.nan], [np.nan, np.nan], [1.0, 0.0], [1.0, 1.0]])
  wr = winrate.win_rate(probs)
  assert (wr.n, wr.dropped) == (3, 2)
  assert wr.value == pytest.approx((1.0 + 0.5 + 1.0) / 3)
  assert wr.aligned_first == 1.0 and wr.baseline_first == pytest.approx(2 / 3)
  row = wr.as_dict()
  assert list(row)[:6] == ["win_rate", "ci_low", "ci_high", "n", "dropped", "aligned_first"]
  empty = winrate.win_rate(np.full((4, 2), np.nan))
  assert empty.n == 0 and empty.dropped == 4 and math.isnan(empty.value)


def test_win_rate_over_groups_drops_the_groups_of_dropped_instances():
  probs = np.array([[1.0, 1.0], [0.0, np.nan], [np.nan, np.nan], [1.0, 0.0], [0.0, 0.0],
                    [1.0, 1.0]])
  groups = np.array(["t1", "t1", "t2", "t2", "t3", "t3"])
  kept = [0, 3, 4, 5]
  wr = winrate.win_rate(probs, groups=groups, seed=4)
  scores = probs.mean(axis=1)
  assert (wr.value, wr.ci_low, wr.ci_high) == pytest.approx(
      stats.bootstrap_ci(scores[kept], seed=4, groups=groups[kept]))
  assert (wr.n, wr.dropped) == (4, 2)
  delta = winrate.score_delta(np.arange(6.0), np.zeros(6), seed=4, groups=groups)
  assert (delta.value, delta.ci_low, delta.ci_high) == pytest.approx(
      stats.bootstrap_ci(np.arange(6.0), seed=4, groups=groups))
  with pytest.raises(ValueError, match="one group per instance"):
    winrate.win_rate(probs, groups=groups[:5])


def test_nan_from_a_judge_is_dropped_by_judge_win_rate():
  class Flaky(judges.Judge):
    name = "flaky"

    def prefer(self, lang, input_text, output_a, output_b):
      return math.nan if input_text == "bad" else float(output_a == "good")
  wr = winrate.judge_win_rate(Flaky(), "es", ["x", "bad", "y"], ["good"] * 3, ["meh"] * 3)
  assert (wr.value, wr.n, wr.dropped) == (1.0, 2, 1)


def test_interval_covers_the_true_win_rate():
  # 200 synthetic experiments of 150 instances, win 0.55 / tie 0.1 / loss 0.35: true rate 0.6.
  rng = np.random.default_rng(0)
  hits = 0
  for seed in range(200):
    scores = rng.choice([1.0, 0.5, 0.0], p=[0.55, 0.1, 0.35], size=150)
    wr = winrate.win_rate(scores, n_resamples=500, seed=seed)
    hits += wr.ci_low <= 0.6 <= wr.ci_high
  assert 0.88 <= hits / 200 <= 0.99


def test_instance_agreement_excludes_ties_and_nan():
  a = np.array([0.9, 0.8, 0.2, 0.5, 0.7, np.nan, 0.6])
  b = np.array([0.6, 0.3, 0.1, 0.9, 0.5, 0.9, 0.8])
  agree = winrate.instance_agreement(a, b)
  assert (agree.n, agree.dropped) == (4, 3)
  assert agree.value == 0.75 and agree.ci_low < 0.75 < agree.ci_high
  both_orders = np.stack([a, a], axis=1)
  assert winrate.instance_agreement(both_orders, b) == agree
  assert math.isnan(winrate.instance_agreement([0.5], [0.9]).value)
  with pytest.raises(ValueError, match="same instances"):
    winrate.instance_agreement(a, b[:3])


def test_ranking_agreement_matches_systems_by_key():
  a = {"en": 0.7, "de": 0.6, "ru": 0.55, "tr": math.nan}
  b = {"ru": 0.5, "de": 0.52, "en": 0.8, "vi": 0.9}
  assert winrate.ranking_agreement(a, b) == winrate.RankAgreement(1.0, 3)
  assert winrate.ranking_agreement([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]).kendall_tau == -1.0
  assert winrate.ranking_agreement({"en": 0.5}, {"en": 0.4}).as_dict() == {
      "kendall_tau": pytest.approx(math.nan, nan_ok=True), "n_systems": 1}


class TableScorer:
  """Rewards from a table keyed by output text (NaN for unknown outputs)."""

  def __init__(self, table):
    self.table = table

  def score(self, lang, inputs, outputs):
    return np.array([self.table.get(o, np.nan) for o in outputs])


def test_rm_score_delta_is_a_paired_mean_difference():
  rng = np.random.default_rng(1)
  base = rng.normal(size=100)
  table = {f"sft{i}": r for i, r in enumerate(base)}
  table.update({f"aligned{i}": r + 0.3 + 0.1 * rng.normal() for i, r in enumerate(base)})
  delta = winrate.rm_score_delta(TableScorer(table), "es", ["x"] * 101,
                                 [f"aligned{i}" for i in range(101)],
                                 [f"sft{i}" for i in range(101)])
  assert (delta.n, delta.dropped) == (100, 1)  # aligned100 has no reward
  assert delta.ci_low < 0.3 < delta.ci_high and delta.ci_high - delta.ci_low < 0.1
  assert delta.as_dict()["delta"] == delta.value


def test_bon_oracle_gain_is_the_choice_minus_the_mean_of_its_candidates():
  from xlalign_jax.judging import bon_oracle_gain
  qualities = [np.array([0.2, 0.4, 0.9]), np.array([1.0, 0.0])]
  np.testing.assert_allclose(bon_oracle_gain(qualities, [2, 1]), [0.9 - 0.5, 0.0 - 0.5])


def test_bon_oracle_ceiling_is_the_best_minus_the_mean():
  from xlalign_jax.judging import bon_oracle_ceiling
  qualities = [np.array([0.2, 0.4, 0.9]), np.array([1.0, 0.0])]
  np.testing.assert_allclose(bon_oracle_ceiling(qualities), [0.9 - 0.5, 1.0 - 0.5])


def test_within_prompt_rank_correlation_matches_spearman_and_skips_constant_prompts():
  from scipy import stats as scipy_stats
  from xlalign_jax.judging import within_prompt_rank_correlation
  rng = np.random.default_rng(0)
  rewards = [rng.normal(size=16) for _ in range(5)]
  qualities = [np.round(r + rng.normal(size=16), 1) for r in rewards]  # rounding makes ties
  qualities[1][:] = 0.3  # all candidates equal: no order to agree with
  rewards[3][:] = 1.0
  corr = within_prompt_rank_correlation(rewards, qualities)
  expected = [scipy_stats.spearmanr(rewards[i], qualities[i]).statistic for i in (0, 2, 4)]
  np.testing.assert_allclose(corr, expected)
  # By hand: a reversed order is -1; one swap of the top two of four is 1 - 6*2/(4*15) = 0.8.
  np.testing.assert_allclose(within_prompt_rank_correlation(
      [np.array([4., 3, 2, 1]), np.array([1., 2, 3, 4])],
      [np.array([1., 2, 3, 4]), np.array([1., 2, 4, 3])]), [-1.0, 0.8])


def test_bon_pick_profile_counts_the_choices_against_all_candidates():
  from xlalign_jax.judging import bon_pick_profile
  from xlalign_jax.synthetic.oracle import Assessment
  prompts = [[Assessment(0.5, sentences=2, correct=2), Assessment(0.1, sentences=3, wrong=1,
                                                                  repeats=1)],
             [Assessment(0.9, sentences=1, correct=1), Assessment(0.2, sentences=2, correct=1,
                                                                  wrong=1),
              Assessment(0.3, sentences=4, correct=2, wrong=1, repeats=1)]]
  profile = bon_pick_profile(prompts, [1, 2])
  assert profile == pytest.approx({
      "sentences_pick": (3 + 4) / 2, "sentences_all": (2.5 + 7 / 3) / 2,
      "correct_pick": (0 + 2) / 2, "correct_all": (1 + 4 / 3) / 2,
      "wrong_pick": (1 + 1) / 2, "wrong_all": (0.5 + 2 / 3) / 2,
      "repeats_pick": (1 + 1) / 2, "repeats_all": (0.5 + 1 / 3) / 2})
