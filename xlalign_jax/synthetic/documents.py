"""Articles, their reference summaries, and candidate summaries from simulated systems.

An article is about a main entity: an intro, some of its facts, a fact or two about a related
entity, and filler sentences; one fact may be emphasized. A fact's salience (knowledge.salience)
depends on its relation, on being about the main entity and on emphasis; the reference summary
states the most salient facts. The systems make the mistakes Seahorse annotates, each at its own
rate, so that their true quality is ordered as in SYSTEMS.
"""
import dataclasses
import random
from typing import List, Tuple

from xlalign_jax.synthetic import content, knowledge, languages
from xlalign_jax.synthetic.content import Item
from xlalign_jax.synthetic.knowledge import Fact

# Simulated summarizers, best first (named after Seahorse's), and how often each makes each
# mistake. t5_base writes the en stand-in whatever the article's language, as an English-only model
# would. Each mistake costs a fraction of the quality, so systems overlap, as real ones do.
SYSTEMS = ("reference", "mt5_xxl", "palm_1shot", "mt5_small", "t5_base")
_MISTAKE_RATES = {
    "reference": {},
    "mt5_xxl": {"omission": 0.15, "binding": 0.15, "extra": 0.15, "repeat": 0.05},
    "palm_1shot": {"extra": 0.9, "second_extra": 0.4, "intro": 0.3, "hallucination": 0.25,
                   "wrong_language": 0.08},
    "mt5_small": {"misselect": 0.6, "omission": 0.3, "hallucination": 0.3, "binding": 0.25,
                  "repeat": 0.25, "garbage": 0.15, "only_garbage": 0.05},
    "t5_base": {"misselect": 0.6, "omission": 0.3, "hallucination": 0.3, "binding": 0.25,
                "repeat": 0.25, "garbage": 0.15, "only_garbage": 0.05, "english": 1.0},
}
# How often each system's summary carries its language's rater-pleasing artifact: unrelated to
# quality, so a rater who rewards it is rewarding noise.
_ARTIFACT_RATE = {"reference": 0.1, "mt5_xxl": 0.35, "palm_1shot": 0.35, "mt5_small": 0.35,
                  "t5_base": 0.35}


@dataclasses.dataclass
class Article:
  main_entity: str
  items: List[Item]
  facts: List[Tuple[Fact, bool]]  # (fact, emphasized), in order of appearance

  def ranked_facts(self) -> List[Fact]:
    """Facts by salience, highest first (ties: first mentioned first)."""
    order = sorted(range(len(self.facts)), key=lambda i: -knowledge.salience(
        self.facts[i][0], self.main_entity, self.facts[i][1]))
    return [self.facts[i][0] for i in order]

  def reference(self) -> List[Fact]:
    return self.ranked_facts()[:knowledge.summary_size(len(self.facts))]


def make_article(rng: random.Random, kb: knowledge.KnowledgeBase) -> Article:
  main = rng.choice(list(kb.facts))
  own = rng.sample(kb.facts[main], rng.randint(3, 5))
  related = [f.value for f in kb.facts[main] if f.value in kb.facts]
  other = []
  if related and rng.random() < 0.7:
    other = rng.sample(kb.facts[rng.choice(related)], rng.randint(1, 2))
  facts = [(f, False) for f in own + other]
  rng.shuffle(facts)
  if rng.random() < 0.4:  # emphasize one fact ("notably, ...")
    i = rng.randrange(len(facts))
    facts[i] = (facts[i][0], True)
  items = [content.fact_item(f, emph) for f, emph in facts]
  for _ in range(rng.randint(1, 2)):
    items.insert(rng.randint(1, len(items)), content.filler_item(rng))
  items.insert(0, content.intro_item(main, kb.types[main]))
  return Article(main, items, facts)


def system_summary(rng: random.Random, system: str, article: Article, lang: str,
                   kb: knowledge.KnowledgeBase) -> Tuple[List[Item], bool, str]:
  """(items, artifact, output language) of `system`'s summary of `article`, written in `lang`."""
  rates = _MISTAKE_RATES[system]
  made = {m for m, rate in rates.items() if rng.random() < rate}  # draws in a fixed order
  pool = [f for f, _ in article.facts]
  ranked = article.ranked_facts()
  facts = article.reference()
  others = ranked[len(facts):]
  if "misselect" in made and others:  # a less salient fact instead of a salient one
    facts[rng.randrange(len(facts))] = rng.choice(others)
  if "omission" in made:
    facts.pop(rng.randrange(len(facts)))
  facts += others[:("extra" in made) + ("second_extra" in made)]
  if "binding" in made:
    facts = content.swap_binding(rng, facts, pool)
  if "hallucination" in made:
    facts = content.hallucinate(rng, facts, pool)
  if "repeat" in made and facts:
    facts.append(rng.choice(facts))
  items = [content.fact_item(f) for f in facts]
  if "intro" in made:
    items.insert(0, content.intro_item(article.main_entity, kb.types[article.main_entity]))
  if "garbage" in made:
    items.append(content.garbage_item(rng))
  if "only_garbage" in made:
    items = [content.garbage_item(rng)]
  if "english" in made:
    lang = "en"
  elif "wrong_language" in made:
    lang = rng.choice([code for code in languages.LANG_CODES if code != lang])
  return items, rng.random() < _ARTIFACT_RATE[system], lang
