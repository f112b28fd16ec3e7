"""Six synthetic languages standing in for de, en, es, ru, tr, vi (not the real languages).

Each has a generated lexicon, its own word order (sentence templates), morphology and script:
  en  det R of E is V           Latin; the reference the others are compared to
  es  det R of E is V           Latin with accents; articles agree in gender (closest to en)
  vi  R of E is V               Latin with diacritics; content words are two spaced syllables
  ru  at E R V                  Cyrillic; entity before relation, no copula
  tr  E+gen R+poss V+cop        Turkish-like suffixes with vowel harmony (morphology hides anchors)
  de  E has V as R              value before relation (the prototype's hardest order to transfer to)
Entity names and numbers are shared by all six. Each language's raters over-reward one surface
artifact (its `artifact` kind), which the oracle ignores.
"""
import dataclasses
import random
from typing import Dict, Tuple

from xlalign_jax.errors import UserError

LANG_CODES = ("de", "en", "es", "ru", "tr", "vi")

RELATION_WORDS = (
    "population", "founded", "mayor", "area", "twin", "length", "source", "depth", "mouth",
    "employees", "founder", "revenue", "rival", "age", "hometown", "height", "friend", "visitors",
    "climber", "weight")
TYPE_WORDS = ("city", "river", "company", "person", "mountain")
FILLER_NOUNS = tuple(f"noun{i}" for i in range(16))
FILLER_VERBS = tuple(f"verb{i}" for i in range(12))
FILLER_ADVERBS = tuple(f"adverb{i}" for i in range(8))
# Function words every language has; phrases are several words.
COMMON_WORDS = ("of", "is", "a", "what", "and", "its", "tell", "about", "emph", "art", "sure",
                "thanks", "hello")
PHRASES = {"idk": 3, "closing": 2}

# tr vowel harmony: the suffix vowel follows the word's last vowel (numbers: as pronounced).
_HARMONY = {**dict.fromkeys("aı", "ı"), **dict.fromkeys("ei", "i"), **dict.fromkeys("ou", "u"),
            **dict.fromkeys("öü", "ü")}
_DIGIT_SOUND = {"0": ("ı", False), "1": ("i", False), "2": ("i", True), "3": ("ü", False),
                "4": ("ü", False), "5": ("i", False), "6": ("ı", True), "7": ("i", True),
                "8": ("i", False), "9": ("u", False)}
_SUFFIXES = {"gen": ("{h}n", "n{h}n"), "poss": ("{h}", "s{h}"), "cop": ("d{h}r", "d{h}r")}
SUFFIX_VARIANTS = {form.format(h=h): morph for morph, forms in _SUFFIXES.items()
                   for form in forms for h in "ıiuü"}


def suffix(word: str, morph: str) -> str:
  """`word`'s suffix for `morph` (gen, poss, cop) under tr vowel harmony."""
  if word[-1].isdigit():
    vowel, ends_in_vowel = _DIGIT_SOUND[word[-1]]
  else:
    vowels = [c for c in word.lower() if c in _HARMONY]
    vowel = _HARMONY[vowels[-1]] if vowels else "i"
    ends_in_vowel = word[-1].lower() in _HARMONY
  return _SUFFIXES[morph][ends_in_vowel].format(h=vowel)


@dataclasses.dataclass(frozen=True)
class Phonology:
  onsets: Tuple[str, ...]
  nuclei: Tuple[str, ...]
  codas: Tuple[str, ...]
  content_syllables: Tuple[int, ...]  # syllable counts to draw from for content words
  spaced_syllables: bool = False  # vi: syllables of a word are separate tokens
  capitalize_nouns: bool = False  # de
  harmony: bool = False  # tr: a word's vowels are all front or all back


@dataclasses.dataclass(frozen=True)
class LanguageSpec:
  code: str
  phonology: Phonology
  templates: Dict[str, str]  # sentence kind -> template (see grammar.py)
  artifact: str  # where raters' favourite particle goes: initial, second, final or closing
  extra_words: Tuple[str, ...] = ()
  genders: Tuple[str, ...] = ("-",)
  morphology: str = ""  # "" or "suffixing" (tr)


_TR_BACK, _TR_FRONT = tuple("aıou"), tuple("eiöü")

SPECS: Dict[str, LanguageSpec] = {
    "en": LanguageSpec(
        "en",
        Phonology(tuple("b c d f g h k l m n p r s t v w".split() + ["th", "sh", "st", "br", "tr"]),
                  ("a", "e", "i", "o", "u", "ea", "oo"), ("", "", "n", "r", "s", "t", "nd", "ng"),
                  (1, 2)),
        {"fact": "det R of E is V", "intro": "E is a T", "question": "what is det R of E",
         "followup": "and its R", "about": "tell about E", "filler": "det N VB ADV"},
        artifact="final", extra_words=("det",)),
    "es": LanguageSpec(
        "es",
        Phonology(tuple("b c d f g l m n p r s t v".split() + ["ll", "ch", "ñ"]),
                  ("a", "e", "i", "o", "u", "á", "é", "í", "ó"), ("", "", "", "n", "s", "r"),
                  (2, 3)),
        {"fact": "det R of E is V", "intro": "E is a T", "question": "what is det R of E",
         "followup": "and its R", "about": "tell about E", "filler": "det N VB ADV"},
        artifact="initial", extra_words=("det",), genders=("m", "f")),
    "vi": LanguageSpec(
        "vi",
        Phonology(tuple("b c d đ g h k l m n s t v x ng nh ph th tr qu".split()),
                  tuple("a à á ả ã ạ ă ắ â ấ e è é ê ế ề i í ì o ó ò ô ố ồ ơ ớ ờ u ú ù ư ứ ừ y"
                        .split()),
                  ("", "", "n", "ng", "c", "t", "m", "p", "nh"), (2,), spaced_syllables=True),
        {"fact": "R of E is V", "intro": "E is a T", "question": "R of E is what",
         "followup": "and R its is what", "about": "tell about E", "filler": "N VB ADV"},
        artifact="final"),
    "ru": LanguageSpec(
        "ru",
        Phonology(tuple("б в г д ж з к л м н п р с т ф х ц ч ш щ".split()),
                  tuple("а е и о у ы я ю ё".split()), ("", "", "н", "р", "в", "к", "л", "й", "ст"),
                  (2, 3)),
        {"fact": "at E R V", "intro": "E is T", "question": "what R at E",
         "followup": "and its R", "about": "tell about E", "filler": "N ADV VB"},
        artifact="second", extra_words=("at",)),
    "tr": LanguageSpec(
        "tr",
        Phonology(tuple("b c ç d f g h k l m n p r s ş t v y z".split()), _TR_BACK + _TR_FRONT,
                  ("", "", "n", "r", "k", "l", "m", "t", "ş", "z"), (2, 3), harmony=True),
        {"fact": "E+gen R+poss V+cop", "intro": "E a T+cop", "question": "E+gen R+poss what",
         "followup": "and R+poss what", "about": "E about tell", "filler": "N ADV VB"},
        artifact="initial", morphology="suffixing"),
    "de": LanguageSpec(
        "de",
        Phonology(tuple("b d f g h k l m n p r s t w z".split() + ["sch", "st", "pf", "kr", "gr"]),
                  ("a", "e", "i", "o", "u", "ä", "ö", "ü", "ei", "au", "ie"),
                  ("", "n", "r", "t", "ch", "st", "ng", "rt", "lt", "ß"), (1, 2),
                  capitalize_nouns=True),
        {"fact": "E has V as R", "intro": "E is a T", "question": "what has E as R",
         "followup": "and its R", "about": "tell about E", "filler": "N VB ADV"},
        artifact="closing", extra_words=("has", "as")),
}

NOUNS = RELATION_WORDS + TYPE_WORDS + FILLER_NOUNS
CONTENT_WORDS = NOUNS + FILLER_VERBS + FILLER_ADVERBS


def check_langs(langs) -> list:
  """The language codes, validated; raises UserError naming an unknown code."""
  langs = list(langs)
  for lang in langs:
    if lang not in SPECS:
      raise UserError(f"unknown language code {lang!r}; known: {', '.join(LANG_CODES)}")
  if not langs:
    raise UserError(f"no languages given; known: {', '.join(LANG_CODES)}")
  return langs


@dataclasses.dataclass
class Lexicon:
  """concept -> surface form (possibly several space-separated tokens), and noun genders."""
  words: Dict[str, str]
  genders: Dict[str, str]


def _syllable(rng: random.Random, phon: Phonology, nuclei: Tuple[str, ...]) -> str:
  return rng.choice(phon.onsets) + rng.choice(nuclei) + rng.choice(phon.codas)


def _word(rng: random.Random, phon: Phonology, syllables: int) -> list:
  nuclei = phon.nuclei
  if phon.harmony:
    nuclei = rng.choice((_TR_BACK, _TR_FRONT))
  parts = [_syllable(rng, phon, nuclei) for _ in range(syllables)]
  return parts if phon.spaced_syllables else ["".join(parts)]


def _function_words(spec: LanguageSpec) -> list:
  """Function-word concepts; a determiner has one form per gender (det.m, det.f)."""
  words = []
  for concept in COMMON_WORDS + spec.extra_words:
    words += [f"det.{g}" for g in spec.genders] if concept == "det" else [concept]
  return words


def make_lexicons(seed: int, taken: set) -> Dict[str, Lexicon]:
  """Lexicons of all six languages; every token is unique across languages and `taken`.

  All six are always generated, in a fixed order, so a language's words do not depend on which
  languages a world selects, and the oracle can tell any of them apart.
  """
  rng = random.Random(f"{seed}:lexicon")
  lexicons = {}
  for code in LANG_CODES:
    spec = SPECS[code]
    phon = spec.phonology
    words, genders = {}, {}
    concepts = [(c, 1) for c in _function_words(spec)]
    concepts += [(c, n) for c, n in PHRASES.items()]
    concepts += [(c, None) for c in CONTENT_WORDS]
    for concept, size in concepts:
      while True:
        if size is None:  # a content word: several syllables, one token (vi: spaced)
          tokens = _word(rng, phon, rng.choice(phon.content_syllables))
        else:  # a function word or phrase: `size` one-syllable tokens
          tokens = [_word(rng, phon, 1)[0] for _ in range(size)]
        if phon.capitalize_nouns and concept in NOUNS:
          tokens = [t.capitalize() for t in tokens]
        forms = list(tokens)
        if spec.morphology == "suffixing" and size is None:  # inflected forms must be unique too
          forms += [tokens[0] + suffix(tokens[0], morph) for morph in ("poss", "cop")]
        if len(set(forms)) == len(forms) and not taken.intersection(forms):
          break
      taken.update(forms)
      words[concept] = " ".join(tokens)
      if concept in NOUNS:
        genders[concept] = rng.choice(spec.genders)
    lexicons[code] = Lexicon(words, genders)
  return lexicons
