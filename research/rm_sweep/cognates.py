"""Run an xlalign command or a research script in a world where es shares words with en.

  python research/rm_sweep/cognates.py --share 0.5 xlalign demo --workdir W
  python research/rm_sweep/cognates.py --share 0.5 research/rm_sweep/analyze.py ARGS...

The stand-in languages share no word: every lexicon token is unique to its language, so a model
can only carry what it learnt in en over to es through entity names and numbers. Real en and es
share many cognates. Here es takes en's word for a seeded `--share` of the content concepts (the
relation, type and filler nouns, verbs and adverbs); function words and ru stay apart. The oracle's
wrong-language check ignores the shared words (they belong to both). Everything that rebuilds the
world from its seed (the writer, the oracle, the judges) must run under this wrapper with the same
`--share`: the patch lives in this process only.
"""
import random

from xlalign_jax.synthetic import languages
from xlalign_jax.synthetic.oracle import Oracle

import wrap

_make_lexicons = languages.make_lexicons
_in_other_language = Oracle._in_other_language


def install(share: float, donor: str = "en", borrower: str = "es") -> None:
  def make_lexicons(seed, taken):
    lexicons = _make_lexicons(seed, taken)
    rng = random.Random(f"{seed}:cognates:{share}")
    words = lexicons[borrower].words
    for concept in languages.CONTENT_WORDS:
      if rng.random() < share:
        words[concept] = lexicons[donor].words[concept]
    return lexicons

  shared_by_world = {}  # id(world) -> its shared tokens: the oracle checks every output

  def in_other_language(self, lang, text):
    key = id(self.world)
    if key not in shared_by_world:
      shared_by_world[key] = set(self.world.grammars[donor].known_tokens()) & set(
          self.world.grammars[borrower].known_tokens())
    shared = shared_by_world[key]
    kept = [t for t in text.split() if t.rstrip(".?!") not in shared]
    return _in_other_language(self, lang, " ".join(kept))

  languages.make_lexicons = make_lexicons
  Oracle._in_other_language = in_other_language


if __name__ == "__main__":
  wrap.main(__doc__.split("\n")[0], "share", install)
