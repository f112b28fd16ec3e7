"""The world rebuilt from its seed: shared entities and facts, and the six languages' grammars.

Everything is derived from the seed alone, so `world.json` (which records it) is enough for the
oracle to rebuild the grammars that parse the written text.
"""
import dataclasses
import random
from typing import Dict

from xlalign_jax.synthetic import grammar as grammar_lib
from xlalign_jax.synthetic import knowledge, languages

DEFAULT_ENTITIES_PER_TYPE = 24


@dataclasses.dataclass
class World:
  seed: int
  kb: knowledge.KnowledgeBase
  grammars: Dict[str, grammar_lib.Grammar]  # all six languages, whatever a world selects
  token_langs: Dict[str, str]  # lexicon token -> its language (names and numbers are in none)


def build_world(seed: int, entities_per_type: int = DEFAULT_ENTITIES_PER_TYPE) -> World:
  taken = set()
  kb = knowledge.make_knowledge_base(random.Random(f"{seed}:kb"), entities_per_type, taken)
  lexicons = languages.make_lexicons(seed, taken)
  grammars = {code: grammar_lib.Grammar(languages.SPECS[code], lexicons[code])
              for code in languages.LANG_CODES}
  token_langs = {token: code for code, g in grammars.items() for token in g.known_tokens()}
  return World(seed, kb, grammars, token_langs)
