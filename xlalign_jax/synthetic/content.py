"""Language-independent text content, the mistakes simulated writers make, and its rendering.

A text is planned as a list of Items (a fact, an intro, a filler, a phrase, ...) and then rendered
by one language's grammar, so the same plan reads in any of the six languages.
"""
import dataclasses
import random
from typing import List, Sequence, Tuple

from xlalign_jax.synthetic import grammar as grammar_lib
from xlalign_jax.synthetic import knowledge, languages
from xlalign_jax.synthetic.knowledge import Fact


@dataclasses.dataclass(frozen=True)
class Item:
  """One sentence to render: a grammar kind with its slot values ("garbage": a word salad)."""
  kind: str
  values: Tuple[Tuple[str, str], ...] = ()
  emphasized: bool = False


def fact_item(fact: Fact, emphasized: bool = False) -> Item:
  return Item("fact", (("E", fact.entity), ("R", fact.relation), ("V", fact.value)), emphasized)


def intro_item(entity: str, entity_type: str) -> Item:
  """`E is a T`: names the entity and its type."""
  return Item("intro", (("E", entity), ("T", entity_type)))


def filler_item(rng: random.Random) -> Item:
  return Item("filler", (("N", rng.choice(languages.FILLER_NOUNS)),
                         ("VB", rng.choice(languages.FILLER_VERBS)),
                         ("ADV", rng.choice(languages.FILLER_ADVERBS))))


def garbage_item(rng: random.Random) -> Item:
  """A word salad of the language's content words: fluent-looking tokens, no sentence."""
  words = rng.sample(languages.CONTENT_WORDS, rng.randint(3, 6))
  return Item("garbage", tuple(("W", w) for w in words))


def render(grammar: grammar_lib.Grammar, items: Sequence[Item], artifact: bool = False) -> str:
  """The items as text in `grammar`'s language, with its rater-pleasing artifact if asked."""
  sentences = []
  for item in items:
    if item.kind == "garbage":
      sentence = " ".join(grammar.word(w) for _, w in item.values) + "."
    else:
      sentence = grammar.sentence(item.kind, **dict(item.values))
    if item.emphasized:
      sentence = f"{grammar.word('emph')} {sentence}"
    sentences.append(sentence)
  if artifact:
    sentences = grammar.with_artifact(sentences)
  return " ".join(sentences)


# ----------------------------------------------------------------------------- mistakes


def swap_binding(rng: random.Random, facts: List[Fact], pool: Sequence[Fact]) -> List[Fact]:
  """Give one stated fact the value of another relation of the same entity from `pool`.

  Every token of the result is still in the source: only reading who-has-what catches it. When
  both facts are stated their values are exchanged.
  """
  facts = list(facts)
  candidates = [(i, other) for i, f in enumerate(facts) for other in pool
                if other.entity == f.entity and other.relation != f.relation
                and other.value != f.value]
  if not candidates:
    return hallucinate(rng, facts, pool)
  i, other = rng.choice(candidates)
  original = facts[i]
  facts[i] = Fact(original.entity, original.relation, other.value)
  for j, f in enumerate(facts):
    if j != i and f == other:
      facts[j] = Fact(other.entity, other.relation, original.value)
  return facts


def hallucinate(rng: random.Random, facts: List[Fact], pool: Sequence[Fact]) -> List[Fact]:
  """Replace one fact's value with a plausible one that the source never mentions."""
  if not facts:
    return facts
  facts = list(facts)
  i = rng.randrange(len(facts))
  mentioned = {f.value for f in pool} | {f.entity for f in pool}
  kind = knowledge.RELATIONS[facts[i].relation][1]
  while True:  # a made-up name has the shape of the real ones
    value = (knowledge.random_number(rng, kind) if kind in ("num", "year")
             else knowledge.make_names(rng, 1, set(mentioned))[0])
    if value not in mentioned:
      break
  facts[i] = Fact(facts[i].entity, facts[i].relation, value)
  return facts
