"""Does an SFT model's *pointwise mutual information* between article and summary rank candidates,
in its own language and across languages?

  python research/rm_sweep/pmi.py WORKDIR CANDIDATES.jsonl [--lang es] [--sources es,en,ru]
      [--others 2]

`likelihood.py` ranks by log p(y | x). Under the en SFT model an es candidate's own words are all
unlikely whatever the article says, so that sum mostly measures how es-like or how long y is. Here
each token's log-probability given the candidate's own article is compared with its mean
log-probability given `--others` far-apart prompts' articles (same task prefix, other facts): what
is left is what the article itself supports. Printed per source model: per fact sentence, how
often a correct fact's value scores above a wrong one's (AUC) by log p and by PMI; then, under the
oracle, the choice's quality minus the prompt's mean, the within-prompt rank correlation of score
and quality, and the choices' mean number of sentences (counted from the text), for:
  loglik_total     sum of log p(y | x) (likelihood.py's score)
  pmi_total        sum over tokens of log p(y_t | x) - log p(y_t | other x)
  pmi_mean         its mean over tokens
  pmi_anchor_sum   the sum over anchor tokens (entity names and numbers) only
  pmi_min_word     the least supported anchor word: a summary is as good as its worst fact
  pmi_min_word_n   pmi_min_word minus 1 per sentence beyond the prompt's fewest: repeats and
                   extras cost, as under the oracle
"""
import numpy as np

from xlalign_jax import judging
from xlalign_jax.score import EOS_ID
from xlalign_jax.synthetic import grammar as grammar_lib

import likelihood
import token_likelihood
from analyze import mean_ci


def word_sums(values, word_of):
  """The sum of `values` over each anchor word's tokens."""
  word_of = np.asarray(word_of)
  return np.array([values[word_of == w].sum() for w in np.unique(word_of[word_of >= 0])])


def candidate_scores(lp_own, lp_other, word_of):
  pmi = lp_own - lp_other
  anchors = np.asarray(word_of) >= 0
  words = word_sums(pmi, word_of)
  return {"loglik_total": lp_own.sum(),
          "pmi_total": pmi.sum(),
          "pmi_mean": pmi.mean(),
          "pmi_anchor_sum": pmi[anchors].sum(),
          "pmi_min_word": words.min() if len(words) else 0.0}


def main():
  args, rows, oracle, quality = likelihood.setup(__doc__.split("\n")[0],
                                                 extra=[("--others", int, 2)])
  import xlalign_tasks
  vocab = xlalign_tasks.VOCABULARY
  # Counted from the text, as an RM could: no oracle knowledge.
  sentences = np.array([[len(grammar_lib.split_sentences(c)) for c in r["candidates"]]
                        for r in rows])
  fewest = sentences.min(1, keepdims=True)

  def report(name, score):
    score = score.reshape(quality.shape)
    choice = score.argmax(1)
    corr = judging.within_prompt_rank_correlation(list(score), list(quality)).mean()
    print(f"{name:28s} choice minus mean {mean_ci(judging.bon_oracle_gain(list(quality), choice))}"
          f"  rank corr {corr:+.3f}  sentences {sentences[np.arange(len(rows)), choice].mean():.2f}"
          f" (all {sentences.mean():.2f})")

  print(f"{len(rows)} prompts x {quality.shape[1]} {args.lang} candidates, mean quality "
        f"{quality.mean():.3f}; other articles per candidate: {args.others}")
  report("oracle", quality)
  articles = [list(vocab.encode(r["inputs"])) + [EOS_ID] for r in rows]
  targets = [token_likelihood.anchor_words(vocab, c) for r in rows for c in r["candidates"]]
  facts = [token_likelihood.fact_values(oracle, args.lang, r["inputs"], c)
           for r in rows for c in r["candidates"]]
  owner = [i for i, r in enumerate(rows) for _ in r["candidates"]]
  own_pairs = [(articles[i], ids) for i, (ids, _, _) in zip(owner, targets)]
  for source in args.sources.split(","):
    checkpoint = f"{args.workdir}/stages/sft_{source}/model"
    lp_own = token_likelihood.token_log_probs(checkpoint, own_pairs)
    lp_other = [np.zeros_like(lp) for lp in lp_own]
    # Far-apart prompts: neighbouring test prompts often describe the same entity.
    for shift in (len(rows) * k // (args.others + 1) for k in range(1, args.others + 1)):
      pairs = [(articles[(i + shift) % len(rows)], ids) for i, (ids, _, _) in zip(owner, targets)]
      for acc, lp in zip(lp_other, token_likelihood.token_log_probs(checkpoint, pairs)):
        acc += lp / args.others
    by_label = {True: ([], []), False: ([], [])}  # per fact: (value's log p, value's PMI)
    for own, other, (_, _, words), fact in zip(lp_own, lp_other, targets, facts):
      for word, correct in fact:
        by_label[correct][0].append(own[words[word]].sum())
        by_label[correct][1].append((own - other)[words[word]].sum())
    print(f"sft_{source}: a correct fact's value scores above a wrong one's (AUC): log p "
          f"{token_likelihood.auc(by_label[True][0], by_label[False][0]):.3f}, PMI "
          f"{token_likelihood.auc(by_label[True][1], by_label[False][1]):.3f}")
    table = [candidate_scores(own, other, word_of)
             for own, other, (_, word_of, _) in zip(lp_own, lp_other, targets)]
    for key in table[0]:
      report(f"sft_{source} {key}", np.array([t[key] for t in table]))
    min_word = np.array([t["pmi_min_word"] for t in table]).reshape(quality.shape)
    report(f"sft_{source} pmi_min_word_n", min_word - (sentences - fewest))


if __name__ == "__main__":
  main()
