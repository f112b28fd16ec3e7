"""The world's facts, shared by all languages: entities, relations, values and their salience.

Entity names and numbers are written identically in every language (the shared anchors that the
prototype found cross-lingual transfer needs); only the words around them differ per language.
"""
import dataclasses
import random
from typing import Dict, List, Tuple

# relation -> (salience weight, value kind). A value kind is "num", "year" or an entity type whose
# names fill the value. The weights are world knowledge: the same in every language.
RELATIONS: Dict[str, Tuple[float, str]] = {
    "population": (1.0, "num"),
    "founded": (0.9, "year"),
    "mayor": (0.8, "person"),
    "area": (0.5, "num"),
    "twin": (0.3, "city"),
    "length": (1.0, "num"),
    "source": (0.8, "mountain"),
    "depth": (0.6, "num"),
    "mouth": (0.4, "city"),
    "employees": (1.0, "num"),
    "founder": (0.9, "person"),
    "revenue": (0.7, "num"),
    "rival": (0.3, "company"),
    "age": (1.0, "num"),
    "hometown": (0.8, "city"),
    "height": (0.7, "num"),
    "friend": (0.4, "person"),
    "visitors": (0.6, "num"),
    "climber": (0.5, "person"),
    "weight": (0.4, "num"),
}
ENTITY_TYPES: Dict[str, Tuple[str, ...]] = {
    "city": ("population", "founded", "mayor", "area", "twin"),
    "river": ("length", "source", "depth", "mouth", "visitors"),
    "company": ("employees", "founded", "founder", "revenue", "rival"),
    "person": ("age", "hometown", "height", "friend", "weight"),
    "mountain": ("height", "visitors", "climber", "age", "area"),
}
# Salience bonuses the reference summary and the oracle agree on.
MAIN_ENTITY_BONUS = 1.0
EMPHASIS_BONUS = 0.8

_NAME_ONSETS = "b d f g h k l m n p r s t v z br kr tr".split()
_NAME_VOWELS = "a e i o u".split()
_NAME_CODAS = ["", "", "n", "r", "l", "s", "m"]


@dataclasses.dataclass(frozen=True)
class Fact:
  entity: str
  relation: str
  value: str


@dataclasses.dataclass
class KnowledgeBase:
  """Entities by type, each with one value per relation of its type."""
  types: Dict[str, str]  # entity name -> type
  facts: Dict[str, List[Fact]]  # entity name -> its facts, in ENTITY_TYPES order


def make_names(rng: random.Random, count: int, taken: set) -> List[str]:
  """Distinct capitalized Latin names (2-3 syllables) avoiding `taken`."""
  names = []
  while len(names) < count:
    syllables = [rng.choice(_NAME_ONSETS) + rng.choice(_NAME_VOWELS) + rng.choice(_NAME_CODAS)
                 for _ in range(rng.choice((2, 2, 3)))]
    name = "".join(syllables).capitalize()
    if name not in taken and 4 <= len(name) <= 10:
      taken.add(name)
      names.append(name)
  return names


def random_number(rng: random.Random, kind: str) -> str:
  """A value of a numeric kind ("num" or "year")."""
  return str(rng.randint(1100, 2020) if kind == "year" else rng.randint(10, 990))


def random_value(rng: random.Random, relation: str, kb_types: Dict[str, str]) -> str:
  kind = RELATIONS[relation][1]
  if kind in ("num", "year"):
    return random_number(rng, kind)
  return rng.choice([name for name, t in kb_types.items() if t == kind])


def make_knowledge_base(rng: random.Random, entities_per_type: int, taken: set) -> KnowledgeBase:
  names = make_names(rng, entities_per_type * len(ENTITY_TYPES), taken)
  types = {name: t for i, t in enumerate(ENTITY_TYPES)
           for name in names[i * entities_per_type:(i + 1) * entities_per_type]}
  facts = {}
  for name, entity_type in types.items():
    facts[name] = []
    for relation in ENTITY_TYPES[entity_type]:
      value = random_value(rng, relation, types)
      while value == name:  # nobody is their own friend
        value = random_value(rng, relation, types)
      facts[name].append(Fact(name, relation, value))
  return KnowledgeBase(types, facts)


def salience(fact: Fact, main_entity: str, emphasized: bool) -> float:
  return (RELATIONS[fact.relation][0] + MAIN_ENTITY_BONUS * (fact.entity == main_entity)
          + EMPHASIS_BONUS * emphasized)


def summary_size(num_facts: int) -> int:
  """How many facts a good summary of a document with `num_facts` facts states."""
  return 2 if num_facts <= 5 else 3
