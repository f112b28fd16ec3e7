"""Where in a candidate does an SFT model of another language know better? Per-token likelihoods.

  python research/rm_sweep/token_likelihood.py WORKDIR CANDIDATES.jsonl [--lang es]
      [--sources es,en,ru]

`likelihood.py` reranks by the sum of every token's log-probability. Under the en SFT model an es
candidate's own words (templates and relations) are all unlikely, since that model writes en, so
the sum mostly counts tokens. Here each candidate is also scored on its anchors alone: the tokens of
entity names and numbers, the words every language shares and where a fact's correctness lives.
Printed per source model, under the oracle, the choice's quality minus the prompt's mean and the
choices' mean number of sentences, for:
  total              sum over all tokens (likelihood.py's score)
  mean               mean over all tokens (EOS included): the total without its count of tokens
  anchors_mean       mean log-probability of the anchor tokens
  anchors_min_word   the least likely anchor word (its tokens' sum): a summary is as good as its
                     worst fact
"""
import jax
import numpy as np

from xlalign_jax import judging, losses, partitioning, training
from xlalign_jax.score import EOS_ID, bucket_length, pad_rows, shift_right
from xlalign_jax.synthetic import grammar as grammar_lib

import likelihood
from analyze import mean_ci

BATCH = 64


def anchor_words(vocab, text):
  """Token ids of `text` (EOS appended); per token, the index of the anchor word it belongs to
  (entity names: capitalized; numbers; punctuation pieces left out), -1 elsewhere; and each
  whitespace word's token indices (punctuation pieces left out)."""
  spm = vocab.vocabulary.tokenizer
  pieces = spm.encode_as_pieces(text)
  words = []  # piece indices of each word: a piece starting with "▁" starts one
  for i, piece in enumerate(pieces):
    if piece.startswith("▁") or not words:
      words.append([])
    words[-1].append(i)
  word_of = [-1] * (len(pieces) + 1)
  anchor = 0
  for word in words:
    text = "".join(pieces[i] for i in word).lstrip("▁").rstrip(".?!,")
    if text and (text[0].isupper() or text.isdigit()):
      for i in word:
        if pieces[i].strip("▁.?!,"):
          word_of[i] = anchor
      anchor += 1
  content = [[i for i in word if pieces[i].strip("\u2581.?!,")] for word in words]
  return [spm.piece_to_id(p) for p in pieces] + [EOS_ID], word_of, content


def fact_values(oracle, lang, input_text, text):
  """(whitespace word index of the value, is the fact correct) for each fact sentence of `text`,
  by the oracle's own parse (the other sentences are left out)."""
  grammar, target = oracle._grammar(lang), oracle._target(lang, input_text)
  out, first = [], 0
  for sentence in grammar_lib.split_sentences(text):
    words = sentence.split()
    parsed = grammar.parse_sentence(sentence)
    if parsed is not None and parsed.kind == "fact":
      value = parsed.slot("V")
      last = max(i for i, w in enumerate(words) if w.rstrip(".?!,") == value)
      key = (parsed.slot("E"), parsed.slot("R"))
      out.append((first + last, target.known.get(key) == value))
    first += len(words)
  return out


def auc(positive, negative):
  """P(a positive's score > a negative's), ties one half (Mann-Whitney)."""
  positive, negative = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
  return float((positive > negative).mean() + 0.5 * (positive == negative).mean())


def token_log_probs(checkpoint, pairs):
  """Per-token log-probabilities of each (input ids, target ids) pair under `checkpoint`."""
  loaded = training.load_for_inference(checkpoint, BATCH, partitioning.MeshConfig())

  @jax.jit
  def fn(params, enc, dec_in, dec_tgt):
    logits = loaded.model.apply({"params": params}, enc, dec_in, dec_tgt)
    return losses.token_log_probs(logits, dec_tgt)

  out = []
  for start in range(0, len(pairs), BATCH):
    chunk = pairs[start:start + BATCH]
    enc = pad_rows([p[0] for p in chunk], bucket_length(max(len(p[0]) for p in chunk)), BATCH)
    tgt = pad_rows([p[1] for p in chunk], bucket_length(max(len(p[1]) for p in chunk)), BATCH)
    with partitioning.activate(loaded.mesh, loaded.rules):
      lp = np.asarray(fn(loaded.params, enc, shift_right(tgt), tgt))
    out += [lp[i, :len(p[1])] for i, p in enumerate(chunk)]
  return out


def scores(lp, word_of):
  word_of = np.asarray(word_of)
  anchors = word_of >= 0
  words = [lp[word_of == w].sum() for w in np.unique(word_of[anchors])]
  return {"total": lp.sum(),
          "mean": lp.mean(),
          "anchors_mean": lp[anchors].mean() if anchors.any() else 0.0,
          "anchors_min_word": min(words) if words else 0.0}


def main():
  args, rows, oracle, quality = likelihood.setup(__doc__.split("\n")[0])
  import xlalign_tasks
  vocab = xlalign_tasks.VOCABULARY
  sentences = np.array([[oracle.assess(args.lang, r["inputs"], c).sentences
                         for c in r["candidates"]] for r in rows])

  def report(name, choice):
    picked = sentences[np.arange(len(rows)), choice].mean()
    print(f"{name:26s} choice minus mean {mean_ci(judging.bon_oracle_gain(list(quality), choice))}"
          f"  sentences {picked:.2f} (all {sentences.mean():.2f})")

  print(f"{len(rows)} prompts x {quality.shape[1]} {args.lang} candidates, mean quality "
        f"{quality.mean():.3f}")
  report("oracle", quality.argmax(1))
  inputs = [list(vocab.encode(r["inputs"])) + [EOS_ID] for r in rows for _ in r["candidates"]]
  targets = [anchor_words(vocab, c) for r in rows for c in r["candidates"]]
  pairs = [(x, ids) for x, (ids, _, _) in zip(inputs, targets)]
  facts = [fact_values(oracle, args.lang, r["inputs"], c) for r in rows for c in r["candidates"]]
  texts = [c for r in rows for c in r["candidates"]]
  assert all(len(t[2]) == len(c.split()) for t, c in zip(targets, texts))
  print(f"{sum(map(len, facts))} fact sentences, {np.mean([ok for f in facts for _, ok in f]):.2f}"
        " correct")
  for source in args.sources.split(","):
    lps = token_log_probs(f"{args.workdir}/stages/sft_{source}/model", pairs)
    by_label = {True: [], False: []}
    for lp, (_, _, words), fact in zip(lps, targets, facts):
      for word, correct in fact:
        by_label[correct].append(lp[words[word]].sum())
    print(f"sft_{source}: a correct fact's value more likely than a wrong one's (AUC) "
          f"{auc(by_label[True], by_label[False]):.3f}")
    table = [scores(lp, word_of) for lp, (_, word_of, _) in zip(lps, targets)]
    for key in table[0]:
      report(f"sft_{source} {key}", np.array([t[key] for t in table]).reshape(quality.shape)
             .argmax(1))


if __name__ == "__main__":
  main()
