"""The gold judge: the true, language-agnostic quality of an output for a task input.

The oracle parses the input (a summarization or dialog input, see formats.py) with the world's
grammar to learn which facts it states and what is asked, then parses the output in the task's
language and scores what it says:

  coverage  of the facts a good output states (salience-weighted for summaries and "tell me about";
            the asked fact for a question), minus penalties for
  wrong     facts: values not in the input, or swapped between relations (binding errors),
  repeats   of a fact already stated, extras beyond what was asked (facts, intros, fillers),
  garbage   sentences that do not parse, and broken determiner agreement.

quality = 0.05 + 0.95 * clip(score, 0, 1); an output in another language scores 0, the lowest.
Rater-pleasing artifacts are ignored. Parsed inputs are cached, so scoring many outputs of one
input (best-of-n, PPO) costs only parsing the outputs.

Usage:
  oracle = Oracle.from_data_dir("DATA_DIR")
  oracle.quality("es", format_summarization_input("es", article), summary)  # -> float in [0, 1]
"""
import dataclasses
import functools
import json
import math
import os
from typing import Dict, Optional, Tuple

from xlalign_jax.errors import UserError
from xlalign_jax.synthetic import formats, knowledge, languages
from xlalign_jax.synthetic import grammar as grammar_lib
from xlalign_jax.synthetic import world as world_lib

WRONG_PENALTY = 0.4
REPEAT_PENALTY = 0.2
EXTRA_PENALTY = 0.08
GARBAGE_PENALTY = 0.25
AGREEMENT_PENALTY = 0.1
IDK_CREDIT = 0.15  # "I don't know" beats a wrong answer, not a right one
OPEN_CREDIT = 0.5  # a fluent reply when the human asked nothing the world can check
FLOOR = 0.05  # the score of an output whose mistakes exactly cancel its credit
_IGNORED_KINDS = ("closing", "sure", "thanks", "hello")
_CACHE_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class Target:
  """What a good output says, learnt from the task input."""
  known: Dict[Tuple[str, str], str]  # (entity, relation) -> value stated in the input
  weights: Dict[Tuple[str, str], float]  # facts worth stating -> their weight
  size: int  # how many facts a good output states
  mode: str = "facts"  # or "unanswerable" (asks what the input never says) or "open" (asks nothing)


def score(base: float, wrong: int = 0, repeats: int = 0, extras: int = 0, garbage: int = 0,
          agreement_errors: int = 0) -> float:
  """Quality in (0, 1] from the credit `base` and the counts of each kind of mistake.

  Strictly decreasing in every mistake even when mistakes outweigh the credit: a gold judge must
  still order the poor outputs of weak models (below 0 the score decays towards 0 instead of
  clipping to a tie), and stays above the 0 of an output in the wrong language.
  """
  raw = (base - WRONG_PENALTY * wrong - REPEAT_PENALTY * repeats - EXTRA_PENALTY * extras
         - GARBAGE_PENALTY * garbage - AGREEMENT_PENALTY * agreement_errors)
  if raw < 0:
    return FLOOR * math.exp(raw)
  return FLOOR + (1 - FLOOR) * min(1.0, raw)


@dataclasses.dataclass(frozen=True)
class Assessment:
  """The parts of an output's quality (raters read them too)."""
  quality: float
  wrong_language: bool = False
  base: float = 0.0  # credit before penalties: coverage, or what "I don't know" earns
  sentences: int = 0
  garbage: int = 0
  coverage: float = 0.0
  correct: int = 0
  wrong: int = 0
  repeats: int = 0
  extras: int = 0
  agreement_errors: int = 0
  artifact: bool = False


class Oracle:
  """Scores outputs with the grammar of a synthetic world."""

  def __init__(self, world: world_lib.World):
    self.world = world
    self._target = functools.lru_cache(maxsize=_CACHE_SIZE)(self._parse_target)

  @classmethod
  def from_data_dir(cls, data_dir: str) -> "Oracle":
    path = os.path.join(data_dir, "world.json")
    if not os.path.isfile(path):
      raise UserError(f"{path} not found: the oracle needs a synthetic world (xlalign synth)")
    with open(path, encoding="utf-8") as f:
      meta = json.load(f)
    return cls(world_lib.build_world(meta["seed"], meta["entities_per_type"]))

  def quality(self, lang: str, input_text: str, output_text: str) -> float:
    return self.assess(lang, input_text, output_text).quality

  def assess(self, lang: str, input_text: str, output_text: str) -> Assessment:
    grammar = self._grammar(lang)
    if self._in_other_language(lang, output_text):
      return Assessment(0.0, wrong_language=True)
    target = self._target(lang, input_text)
    stated, idk = set(), False
    counts = dict(sentences=0, garbage=0, wrong=0, repeats=0, extras=0, agreement_errors=0)
    artifact = False
    for sentence in grammar_lib.split_sentences(output_text):
      counts["sentences"] += 1
      parsed = grammar.parse_sentence(sentence)
      if parsed is None:
        counts["garbage"] += 1
        continue
      artifact |= parsed.artifact or parsed.kind == "closing"
      counts["agreement_errors"] += not parsed.agreement_ok
      if parsed.kind == "fact":
        key = (parsed.slot("E"), parsed.slot("R"))
        if target.known.get(key) != parsed.slot("V"):
          counts["wrong"] += 1
        elif key in stated:
          counts["repeats"] += 1
        else:
          stated.add(key)
      elif parsed.kind == "idk":
        idk = True
      elif parsed.kind not in _IGNORED_KINDS:
        counts["extras"] += 1
    norm = sum(sorted(target.weights.values(), reverse=True)[:target.size])
    covered = sum(target.weights.get(k, 0.0) for k in stated)
    coverage = min(1.0, round(covered / norm, 9)) if norm else 0.0  # round: sum order
    if target.mode == "open":
      base = OPEN_CREDIT if counts["sentences"] > counts["garbage"] else 0.0
    elif idk and not stated:
      base = IDK_CREDIT if target.mode == "facts" else 1.0
    else:
      base = coverage
    counts["extras"] += max(0, len(stated) - target.size)
    mistakes = {k: v for k, v in counts.items() if k != "sentences"}
    return Assessment(score(base, **mistakes), base=base, coverage=coverage, correct=len(stated),
                      artifact=artifact, **counts)

  # --------------------------------------------------------------------------- internals

  def _grammar(self, lang: str) -> grammar_lib.Grammar:
    if lang not in self.world.grammars:
      raise UserError(f"unknown language code {lang!r}; known: {', '.join(languages.LANG_CODES)}")
    return self.world.grammars[lang]

  def _in_other_language(self, lang: str, text: str) -> bool:
    """Whether more of the text's words belong to one other language than to `lang`."""
    votes = {}
    for token in text.split():
      code = self.world.token_langs.get(token.rstrip(".?!"))
      if code:
        votes[code] = votes.get(code, 0) + 1
    own = votes.pop(lang, 0)
    return bool(votes) and max(votes.values()) > own

  def _parse_target(self, lang: str, input_text: str) -> Target:
    grammar = self._grammar(lang)
    if input_text.lstrip().startswith("You are given a dialog"):
      return self._dialog_target(grammar, formats.parse_dialog_input(input_text))
    return self._summary_target(grammar, formats.parse_summarization_input(input_text))

  @staticmethod
  def _summary_target(grammar: grammar_lib.Grammar, article: str) -> Target:
    facts, main = [], None
    for sentence in grammar_lib.split_sentences(article):
      parsed = grammar.parse_sentence(sentence)
      if parsed is None or parsed.kind not in ("fact", "intro"):
        continue
      main = main or parsed.slot("E")
      if parsed.kind == "fact":
        facts.append((knowledge.Fact(parsed.slot("E"), parsed.slot("R"), parsed.slot("V")),
                      parsed.emphasized))
    known = {(f.entity, f.relation): f.value for f, _ in facts}
    weights = {(f.entity, f.relation): knowledge.salience(f, main, emph) for f, emph in facts}
    return Target(known, weights, knowledge.summary_size(len(facts)))

  @staticmethod
  def _dialog_target(grammar: grammar_lib.Grammar, turns) -> Target:
    known: Dict[Tuple[str, str], str] = {}
    focus: Optional[str] = None  # the entity the conversation is about ("its" refers to it)
    ask: Optional[Tuple[str, Optional[str]]] = None  # (entity, relation or None for "about")
    for speaker, text in turns:
      if speaker != formats.HUMAN:  # only the human's statements are ground truth
        continue
      ask = None
      for sentence in grammar_lib.split_sentences(text):
        parsed = grammar.parse_sentence(sentence)
        if parsed is None:
          continue
        if parsed.kind == "fact":
          known[(parsed.slot("E"), parsed.slot("R"))] = parsed.slot("V")
        elif parsed.kind in ("intro", "about", "question"):
          focus = parsed.slot("E")
          if parsed.kind != "intro":
            ask = (focus, parsed.slot("R") if parsed.kind == "question" else None)
        elif parsed.kind == "followup" and focus:
          ask = (focus, parsed.slot("R"))
    if ask is None:
      return Target(known, {}, 0, mode="open")
    entity, relation = ask
    if relation is not None:
      weights = {(entity, relation): 1.0} if (entity, relation) in known else {}
    else:  # "tell me about": the two most salient facts about the entity
      weights = {(e, r): knowledge.salience(knowledge.Fact(e, r, v), entity, False)
                 for (e, r), v in known.items() if e == entity}
    return Target(known, weights, 1 if relation else 2,
                  mode="facts" if weights else "unanswerable")
