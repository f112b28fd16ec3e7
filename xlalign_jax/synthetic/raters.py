"""Simulated human raters: Seahorse answers for summaries, OpenAssistant ranks for replies.

Raters see an output's true quality (the oracle's assessment) through blind spots and noise:
half the time they miss wrong facts (a swapped value reads fine unless checked against the source)
or let verbosity pass. And each language's raters over-reward their language's surface artifact
(languages.SPECS[lang].artifact), which the oracle ignores: the spurious signal a same-language
reward model can overfit to. The noise is set so that raters agree with the oracle's pairwise order
about as often as Seahorse's humans agree with each other (roughly 60-80%).

Seahorse questions (answers Yes / No / Unsure; 2-6 blank when 1 is No):
  1 comprehensible  2 free of repetition  3 grammatical  4 attributable to the article
  5 captures the main ideas  6 concise and good overall (the reward model's label)
"""
import random
from typing import List, Sequence

from xlalign_jax.synthetic import oracle
from xlalign_jax.synthetic.oracle import Assessment

ARTIFACT_BIAS = 0.3  # how much raters over-reward their language's artifact, in quality units
NOISE = 0.5  # std of a rater's misreading of quality
MISS_WRONG_FACTS = 0.5
MISS_VERBOSITY = 0.5
THRESHOLD = 0.7  # question 6 is "Yes" above this perceived quality
UNSURE_BAND = 0.04  # perceived quality this close to the threshold is "Unsure" half the time
YES, NO, UNSURE = "Yes", "No", "Unsure"


def perceived_quality(rng: random.Random, a: Assessment) -> float:
  """The quality a rater sees: with blind spots, the artifact bias and noise."""
  seen = 0.0
  if not a.wrong_language:
    seen = oracle.score(a.base, wrong=0 if rng.random() < MISS_WRONG_FACTS else a.wrong,
                        repeats=a.repeats, extras=0 if rng.random() < MISS_VERBOSITY else a.extras,
                        garbage=a.garbage, agreement_errors=a.agreement_errors)
  return seen + ARTIFACT_BIAS * a.artifact + rng.gauss(0.0, NOISE)


def _answer(rng: random.Random, good: bool, accuracy: float) -> str:
  if rng.random() < 0.02:
    return UNSURE
  return YES if good == (rng.random() < accuracy) else NO


def seahorse_answers(rng: random.Random, assessment: Assessment) -> List[str]:
  """question1..question6 for one summary; questions 2-6 are "" when question1 is No."""
  a = assessment
  unreadable = a.wrong_language or a.sentences == a.garbage
  if rng.random() < (0.85 if unreadable else 0.03):
    return [NO] + [""] * 5
  answers = [YES,
             _answer(rng, a.repeats == 0, 0.9),
             _answer(rng, a.garbage == 0 and a.agreement_errors == 0, 0.9),
             _answer(rng, a.wrong == 0, 0.8),
             _answer(rng, a.coverage >= 0.7, 0.8)]
  perceived = perceived_quality(rng, a)
  if abs(perceived - THRESHOLD) < UNSURE_BAND and rng.random() < 0.5:
    answers.append(UNSURE)
  else:
    answers.append(YES if perceived > THRESHOLD else NO)
  return answers


def rank(rng: random.Random, assessments: Sequence[Assessment]) -> List[int]:
  """OpenAssistant ranks (0 = best) of sibling replies, by noisy perceived quality."""
  perceived = [perceived_quality(rng, a) for a in assessments]
  order = sorted(range(len(perceived)), key=lambda i: -perceived[i])
  ranks = [0] * len(order)
  for r, i in enumerate(order):
    ranks[i] = r
  return ranks
