"""The reward-model probe: each corrupted copy carries exactly the mistake it names (checked by the
oracle), and the preference bookkeeping is right for scorers whose answer is known."""
import numpy as np
import pytest

from xlalign_jax import report
from xlalign_jax.synthetic import rm_probe
from xlalign_jax.synthetic import world as world_lib
from xlalign_jax.synthetic.oracle import Oracle

LANG = "es"


@pytest.fixture(scope="module")
def oracle():
  return Oracle(world_lib.build_world(0))


@pytest.fixture(scope="module")
def cases(oracle):
  return rm_probe.make_cases(oracle.world, LANG, 60, seed=1)


def test_each_copy_has_exactly_its_mistake(oracle, cases):
  seen = set()
  for case in cases:
    ref = oracle.assess(LANG, case["input"], case["reference"])
    assert ref.wrong == ref.repeats == ref.garbage == 0 and ref.coverage == 1.0
    for kind, text in case["variants"].items():
      seen.add(kind)
      a = oracle.assess(LANG, case["input"], text)
      assert a.quality < ref.quality, kind
      if kind == "omission":
        assert (a.sentences, a.wrong, a.repeats) == (ref.sentences - 1, 0, 0)
      elif kind == "repetition":
        assert (a.sentences, a.wrong, a.repeats) == (ref.sentences + 1, 0, 1)
      else:  # length-neutral: same number of sentences, one wrong fact (two when values swap)
        wrong = (1, 2) if kind == "swapped_values" else (1,)
        assert (a.sentences, a.repeats) == (ref.sentences, 0) and a.wrong in wrong, kind
    # The same reference read against another article: every one of its facts is unattributable.
    other = oracle.assess(LANG, case["other_input"], case["reference"])
    assert (other.correct, other.wrong) == (0, ref.sentences) and other.quality < ref.quality
    seen.add("other_article")
  assert seen == set(rm_probe.KINDS)


def test_cases_are_deterministic_per_seed(oracle, cases):
  assert rm_probe.make_cases(oracle.world, LANG, 60, seed=1) == cases
  assert rm_probe.make_cases(oracle.world, LANG, 60, seed=2) != cases


def test_preference_rates_for_known_scorers(oracle, cases):
  gold = rm_probe.probe(lambda x, y: [oracle.quality(LANG, a, b) for a, b in zip(x, y)], cases)
  assert set(gold) == set(rm_probe.KINDS)
  for row in gold.values():
    assert row["prefers_reference"] == 1.0 and row["ci_low"] > 0.9
  assert gold["omission"]["n"] == len(cases)

  longer = rm_probe.probe(lambda x, y: np.array([len(b.split()) for b in y]), cases)
  assert longer["omission"]["prefers_reference"] == 1.0
  assert longer["repetition"]["prefers_reference"] == 0.0
  assert longer["other_article"]["prefers_reference"] == 0.5  # it never reads the input
  # A scorer that only checks whether the summary's values occur in the input: it reads the
  # source, so it tells the reference's own article from another one and catches a made-up value.
  def value_overlap(inputs, outputs):
    return np.array([sum(w.strip(".") in x.split() for w in y.split() if w[:1].isupper()
                         or w.strip(".").isdigit()) for x, y in zip(inputs, outputs)])
  overlap = rm_probe.probe(lambda x, y: value_overlap([a.replace(".", "") for a in x], y), cases)
  assert overlap["other_article"]["prefers_reference"] == 1.0
  assert overlap["hallucinated_value"]["prefers_reference"] == 1.0
  assert overlap["swapped_values"]["prefers_reference"] == 0.5  # every token is in the article
  blind = rm_probe.probe(lambda x, y: np.zeros(len(y)), cases)  # ties count one half
  assert all(row["prefers_reference"] == 0.5 for row in blind.values())


def test_report_shows_the_probe_table():
  rows = [{"source": s, "target": "es", "kind": k, "prefers_reference": p, "ci_low": p - 0.1,
           "ci_high": p + 0.1, "n": 100}
          for s in ("en", "es") for k, p in (("swapped_values", 0.55), ("omission", 0.9))]
  results = {"winrates": [{"method": "bon", "source": "en", "target": "es", "judge": "oracle",
                           "win_rate": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 10}],
             "rm_probe": rows, "sft_probe": rows[2:]}
  text = report.render_markdown(results)
  assert "## What each reward model notices" in text
  rm_section, sft_section = text.split("### What each SFT model's likelihood notices")
  assert "| en → es | 55.0 [45.0, 65.0] | 90.0 [80.0, 100.0] |" in rm_section
  assert "| SFT → articles | swapped values | omission |" in sft_section
  assert "| es → es | 55.0 [45.0, 65.0] | 90.0 [80.0, 100.0] |" in sft_section
  assert "| en → es |" not in sft_section
