"""Rendering and parsing the sentences of one synthetic language.

A template is a space-separated list of template tokens:
  E, V          an entity name / a value (name or number), shared by all languages
  R, T          a relation word / an entity-type word
  N, VB, ADV    filler words (sentences that state no fact)
  X+m           the slot with suffix m (tr: gen, poss, cop); names and numbers take it after `'`
  det           a determiner agreeing in gender with the next noun
  other         a function word of the lexicon
The parser maps each token to a symbol and looks the symbol sequence up in a table compiled from
the same templates, so rendering and parsing cannot drift apart.
"""
import dataclasses
import itertools
import re
from typing import Dict, List, Optional, Tuple

from xlalign_jax.synthetic import languages

# Sentence kinds that are one fixed phrase.
PHRASE_KINDS = ("idk", "sure", "thanks", "hello", "closing")
QUESTION_KINDS = ("question", "followup")
_SLOT_WORDS = {"R": languages.RELATION_WORDS, "T": languages.TYPE_WORDS,
               "N": languages.FILLER_NOUNS, "VB": languages.FILLER_VERBS,
               "ADV": languages.FILLER_ADVERBS}
_NAME = re.compile(r"^[A-Z][a-z]+$")
_NUMBER = re.compile(r"^\d+$")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")

@dataclasses.dataclass(frozen=True)
class Parsed:
  """One parsed sentence: its kind, slot values and surface flags."""
  kind: str
  slots: Tuple[Tuple[str, str], ...] = ()
  agreement_ok: bool = True
  artifact: bool = False
  emphasized: bool = False

  def slot(self, name: str) -> str:
    return dict(self.slots)[name]


@dataclasses.dataclass(frozen=True)
class _Slot:
  kind: str  # a slot letter, "det" or "word"
  name: str  # the function word for "word"
  morph: str = ""


def _compile_template(template: str) -> List[_Slot]:
  slots = []
  for token in template.split():
    base, _, morph = token.partition("+")
    if base in ("E", "V", "R", "T", "N", "VB", "ADV"):
      slots.append(_Slot(base, base, morph))
    elif base == "det":
      slots.append(_Slot("det", "det"))
    else:
      slots.append(_Slot("word", base))
  return slots


class Grammar:
  """Render and parse sentences of one language."""

  def __init__(self, spec: languages.LanguageSpec, lexicon: languages.Lexicon):
    self.spec = spec
    self.code = spec.code
    self.lexicon = lexicon
    self.templates = {kind: _compile_template(t) for kind, t in spec.templates.items()}
    self._surfaces: Dict[str, Tuple[str, str]] = {}  # surface -> (symbol, concept)
    for concept, surface in lexicon.words.items():
      if concept.startswith("det."):
        self._surfaces[surface] = ("det", concept[4:])
      elif concept in languages.CONTENT_WORDS:
        slot = next(s for s, words in _SLOT_WORDS.items() if concept in words)
        self._surfaces[surface] = (slot, concept)
      else:
        self._surfaces[surface] = (concept, concept)
    for slots in self.templates.values():  # inflected content words the templates use
      for slot in slots:
        if slot.morph and slot.kind in _SLOT_WORDS:
          symbol = f"{slot.kind}+{slot.morph}"
          for concept in _SLOT_WORDS[slot.kind]:
            word = lexicon.words[concept]
            self._surfaces[word + languages.suffix(word, slot.morph)] = (symbol, concept)
    self._max_words = max(len(s.split()) for s in self._surfaces)
    self._table = self._compile_table()

  # --------------------------------------------------------------------------- rendering

  def word(self, concept: str) -> str:
    return self.lexicon.words[concept]

  def _render_slot(self, slot: _Slot, values: Dict[str, str], next_noun: Optional[str]) -> str:
    if slot.kind == "word":
      return self.word(slot.name)
    if slot.kind == "det":
      return self.word(f"det.{self.lexicon.genders[next_noun]}")
    value = values[slot.kind]
    if slot.kind in ("E", "V"):
      return f"{value}'{languages.suffix(value, slot.morph)}" if slot.morph else value
    word = self.word(value)
    return word + languages.suffix(word, slot.morph) if slot.morph else word

  def sentence(self, kind: str, **values: str) -> str:
    """One sentence of `kind` with its terminator, e.g. sentence("fact", E=..., R=..., V=...)."""
    if kind in PHRASE_KINDS:
      body = self.word(kind)
    else:
      slots = self.templates[kind]
      tokens = []
      for i, slot in enumerate(slots):
        next_noun = next((values[s.kind] for s in slots[i + 1:] if s.kind in ("R", "T", "N")),
                         None)
        tokens.append(self._render_slot(slot, values, next_noun))
      body = " ".join(tokens)
    return body + ("?" if kind in QUESTION_KINDS else ".")

  def with_artifact(self, sentences: List[str]) -> List[str]:
    """The sentences with this language's rater-pleasing artifact added (the oracle ignores it)."""
    sentences = list(sentences)
    particle = self.word("art")
    where = self.spec.artifact
    if not sentences:
      return sentences
    if where == "closing":
      sentences.append(self.sentence("closing"))
    elif where == "initial":
      sentences[0] = f"{particle} {sentences[0]}"
    elif where == "second":
      first, _, rest = sentences[0].partition(" ")
      sentences[0] = f"{first} {particle} {rest}" if rest else f"{particle} {first}"
    else:  # final: before the last sentence's terminator
      sentences[-1] = f"{sentences[-1][:-1]} {particle}{sentences[-1][-1]}"
    return sentences

  # --------------------------------------------------------------------------- parsing

  def _compile_table(self) -> Dict[Tuple[str, ...], Tuple[str, List[Tuple[str, int]]]]:
    """symbol sequence -> (kind, [(slot, position)]) for every template and value type."""
    table = {}
    for kind, slots in self.templates.items():
      options = []
      for slot in slots:
        suffix = f"+{slot.morph}" if slot.morph else ""
        if slot.kind == "word":
          options.append([slot.name])
        elif slot.kind == "det":
          options.append(["det"])
        elif slot.kind == "E":
          options.append(["NAME" + suffix])
        elif slot.kind == "V":
          options.append(["NAME" + suffix, "NUM" + suffix])
        else:
          options.append([slot.kind + suffix])
      positions = [(s.kind, i) for i, s in enumerate(slots) if s.kind not in ("word", "det")]
      for symbols in itertools.product(*options):
        table[symbols] = (kind, positions)
    for kind in PHRASE_KINDS:
      table[(kind,)] = (kind, [])
    return table

  def tokens(self, sentence: str) -> List[Tuple[str, str]]:
    """(symbol, value) per token; multi-token words matched longest first; unknown -> "?"."""
    words = sentence.rstrip(".?!").split()
    out, i = [], 0
    while i < len(words):
      for n in range(min(self._max_words, len(words) - i), 0, -1):
        hit = self._surfaces.get(" ".join(words[i:i + n]))
        if hit:
          out.append(hit)
          i += n
          break
      else:
        out.append(self._anchor(words[i]))
        i += 1
    return out

  @staticmethod
  def _anchor(token: str) -> Tuple[str, str]:
    base, sep, suffix = token.partition("'")
    morph = ""
    if sep:
      morph = languages.SUFFIX_VARIANTS.get(suffix)
      if morph is None:
        return ("?", token)
    symbol = "NUM" if _NUMBER.match(base) else "NAME" if _NAME.match(base) else None
    if symbol is None:
      return ("?", token)
    return (f"{symbol}+{morph}" if morph else symbol, base)

  def parse_sentence(self, sentence: str) -> Optional[Parsed]:
    """The sentence's kind and slots, or None when it is not a sentence of this language."""
    tokens = self.tokens(sentence)
    artifact = any(s == "art" for s, _ in tokens)
    emphasized = any(s == "emph" for s, _ in tokens)
    tokens = [t for t in tokens if t[0] not in ("art", "emph")]
    match = self._table.get(tuple(s for s, _ in tokens))
    if match is None:
      return None
    kind, positions = match
    slots = tuple((slot, tokens[i][1]) for slot, i in positions)
    agreement_ok = all(tokens[i][1] == self.lexicon.genders[tokens[i + 1][1]]
                       for i, (s, _) in enumerate(tokens) if s == "det")
    return Parsed(kind, slots, agreement_ok, artifact, emphasized)

  def known_tokens(self) -> List[str]:
    """Every whitespace token of this language's lexicon and its inflections."""
    return [t for surface in self._surfaces for t in surface.split()]


def split_sentences(text: str) -> List[str]:
  return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]
