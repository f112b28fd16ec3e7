"""`xlalign rm-probe`: which mistakes a reward model notices, on fresh synthetic-world articles.

  xlalign rm-probe --checkpoint RUNS/rm_es --data_dir WORKDIR/data --lang es --output probe.json
  xlalign rm-probe --loglik --checkpoint RUNS/sft_en ...   (an LM's log-likelihood, not a reward)

For each of `--articles` new articles (never in any split), the reference summary is scored against
copies of it with one controlled mistake. The first four keep the number of sentences, so length
cannot tell them apart; the last two change it, so they show a length preference:

  hallucinated_value    a value the article never mentions
  swapped_values        the value of another relation of the same entity (exchanged when both are
                        stated); every token is still in the article
  substituted_relation  a relation the article does not state for the entity, value kept
                        (the mistake the demo's SFT policies make most often)
  unstated_fact         a fact true in the world but absent from the article (unattributable)
  omission              one fact left out
  repetition            one fact stated twice

and, to see whether the RM reads the article at all, the reference itself against another article:

  other_article         the same reference summary scored with another article as the input
                        (about another entity: none of its facts is in that article)

The oracle scores every copy below the reference; the probe reports how often the RM agrees
(`prefers_reference`, 0.5 = blind to that mistake; a scorer that ignores the input gets exactly 0.5
on other_article), with a 95% Wilson interval.

With `--loglik` the score is the model's log-likelihood of the summary instead, e.g. of the SFT
model an RM starts from: what that model's own predictions know of each mistake. A likelihood falls
with every token added, so there omission and repetition mostly measure length.
"""
import random
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from xlalign_jax import partitioning, stats
from xlalign_jax.errors import UserError
from xlalign_jax.synthetic import content, documents, formats, knowledge
from xlalign_jax.synthetic import world as world_lib
from xlalign_jax.synthetic.knowledge import Fact

KINDS = ("hallucinated_value", "swapped_values", "substituted_relation", "unstated_fact",
         "omission", "repetition", "other_article")
ScoreFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]  # (inputs, outputs) -> scores


def _substitute_relation(rng: random.Random, facts: List[Fact], article: documents.Article,
                         kb: knowledge.KnowledgeBase) -> List[Fact]:
  stated = {f.relation for f, _ in article.facts if f.entity == article.main_entity}
  free = [r for r in knowledge.ENTITY_TYPES[kb.types[article.main_entity]] if r not in stated]
  about_main = [i for i, f in enumerate(facts) if f.entity == article.main_entity]
  if not free or not about_main:
    return []
  i = rng.choice(about_main)
  return facts[:i] + [Fact(facts[i].entity, rng.choice(free), facts[i].value)] + facts[i + 1:]


def _unstated_fact(rng: random.Random, facts: List[Fact], article: documents.Article,
                   kb: knowledge.KnowledgeBase) -> List[Fact]:
  pool = {f for f, _ in article.facts}
  unstated = [f for f in kb.facts[article.main_entity] if f not in pool]
  if not unstated:
    return []
  i = rng.randrange(len(facts))
  return facts[:i] + [rng.choice(unstated)] + facts[i + 1:]


def corruptions(rng: random.Random, article: documents.Article,
                kb: knowledge.KnowledgeBase) -> Dict[str, List[Fact]]:
  """The reference facts with one mistake of each kind; a kind that this article cannot
  express (no free relation, no unstated fact) is left out."""
  reference = article.reference()
  pool = [f for f, _ in article.facts]
  dropped = rng.randrange(len(reference))
  out = {
      "hallucinated_value": content.hallucinate(rng, reference, pool),
      "swapped_values": content.swap_binding(rng, reference, pool),
      "substituted_relation": _substitute_relation(rng, reference, article, kb),
      "unstated_fact": _unstated_fact(rng, reference, article, kb),
      "omission": reference[:dropped] + reference[dropped + 1:],
      "repetition": reference + [rng.choice(reference)],
  }
  return {kind: facts for kind, facts in out.items() if facts}


def make_cases(world: world_lib.World, lang: str, articles: int, seed: int = 0) -> List[dict]:
  """[{"input", "reference", "variants": {kind: text}, "other_input"}] for `articles` fresh
  articles (other_input: the task input of an unrelated article, for other_article)."""
  if lang not in world.grammars:
    raise UserError(f"unknown language code {lang!r}")
  grammar = world.grammars[lang]
  rng = random.Random(f"{seed}:{lang}:rm-probe")
  render = lambda facts: content.render(grammar, [content.fact_item(f) for f in facts])
  task_input = lambda a: formats.format_summarization_input(lang, content.render(grammar, a.items))
  cases = []
  for _ in range(articles):
    article = documents.make_article(rng, world.kb)
    variants = {k: render(v) for k, v in corruptions(rng, article, world.kb).items()}
    cases.append({"input": task_input(article), "reference": render(article.reference()),
                  "variants": variants,
                  "other_input": task_input(_unrelated_article(rng, article, world.kb))})
  return cases


def _unrelated_article(rng: random.Random, article: documents.Article,
                       kb: knowledge.KnowledgeBase) -> documents.Article:
  """A fresh article about another entity that states none of `article`'s reference facts."""
  reference = set(article.reference())
  while True:
    other = documents.make_article(rng, kb)
    if (other.main_entity != article.main_entity
        and not reference & {f for f, _ in other.facts}):
      return other


def probe(score_fn: ScoreFn, cases: Sequence[dict]) -> Dict[str, dict]:
  """Per mistake kind: how often score(reference) > score(corrupted copy), with its interval
  (for other_article: the reference with its own article against it with another)."""
  inputs, outputs, where = [], [], []
  for i, case in enumerate(cases):
    pairs = [("reference", case["input"], case["reference"])]
    pairs += [(kind, case["input"], text) for kind, text in sorted(case["variants"].items())]
    pairs.append(("other_article", case["other_input"], case["reference"]))
    for kind, task_input, text in pairs:
      inputs.append(task_input)
      outputs.append(text)
      where.append((i, kind))
  scores = np.asarray(score_fn(inputs, outputs), dtype=np.float64)
  by_case = {}
  for (i, kind), s in zip(where, scores):
    by_case.setdefault(i, {})[kind] = s
  result = {}
  for kind in KINDS:
    wins = [float(c["reference"] > c[kind]) + 0.5 * float(c["reference"] == c[kind])
            for c in by_case.values() if kind in c]
    if wins:
      point, low, high = stats.binomial_ci(sum(wins), len(wins))
      result[kind] = {"prefers_reference": point, "ci_low": low, "ci_high": high, "n": len(wins)}
  return result


def probe_grid(checkpoints: Dict[str, str], world: world_lib.World, targets: Sequence[str],
               vocab, articles: int, seed: int = 0,
               mesh_config: Optional[partitioning.MeshConfig] = None,
               reward: bool = True) -> List[dict]:
  """Every source model (`{source: checkpoint}`) probed in every target language: rows of
  {"source", "target", "kind", "prefers_reference", "ci_low", "ci_high", "n"}. The score is the
  RM's reward, or with `reward=False` the model's log-likelihood of the summary (an SFT model's)."""
  from xlalign_jax.score import Scorer
  cases = {t: make_cases(world, t, articles, seed) for t in targets}
  rows = []
  for source, checkpoint in checkpoints.items():
    scorer = Scorer(checkpoint, 64, reward=reward,
                    mesh_config=mesh_config or partitioning.MeshConfig())
    for target in targets:
      result = probe(lambda x, y: scorer.score_texts(vocab, x, y), cases[target])
      rows += [{"source": source, "target": target, "kind": kind, **row}
               for kind, row in result.items()]
  return rows
