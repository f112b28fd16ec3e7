"""Do a demo's models align the stand-in languages' relation words? A retrieval probe of encoders.

  python research/rm_sweep/relation_alignment.py --workdir W [--output F.json]

`W` is a finished `xlalign demo` workdir. For every entity E of the world and the five relations R
of its type, the fact sentence "R of E is 57" in a source language is matched against the same five
sentences in a target language (E and the value shared, only the relation word and the language's
own words differ): a hit when the nearest target sentence (cosine of mean-pooled encoder states)
has the same relation. Chance is 0.2. As a check that the probe sees relations at all, the same
within one language against another entity of the type with another value ("other entity").
Models: a randomly initialised encoder, the pretrained base, the en SFT model and the en RM.
"""
import argparse
import json

import jax
import numpy as np
import seqio

from xlalign_jax import checkpoints, partitioning, training
from xlalign_jax.synthetic import knowledge
from xlalign_jax.synthetic.oracle import Oracle

VALUE, OTHER_VALUE = "57", "912"
PAIRS = (("en", "es"), ("en", "ru"), ("es", "ru"))


def encoder(path: str, score_head: bool = False, random_init: bool = False):
  """sentences -> unit-length mean-pooled encoder states, [n, d]."""
  mesh = partitioning.create_mesh(partitioning.MeshConfig())
  rules = partitioning.DATA_PARALLEL_RULES
  model = training.build_model(checkpoints.load_model_config(path), score_head=score_head)
  abstract, _ = training.abstract_params(model, mesh, rules)
  if random_init:
    params, _ = partitioning.sharded_init(training.model_init_fn(model), jax.random.PRNGKey(1),
                                          mesh, rules)
  else:
    params = checkpoints.restore_params(path, abstract)
  encode = jax.jit(lambda p, x: model.apply({"params": p}, x, method="encode"))

  def embed(vocab, sentences):
    ids = [list(vocab.encode(s)) + [1] for s in sentences]
    tokens = np.zeros((len(ids), 32), np.int32)
    for i, t in enumerate(ids):
      tokens[i, :len(t)] = t
    valid = (tokens > 0)[..., None]
    pooled = (np.asarray(encode(params, tokens)) * valid).sum(1) / valid.sum(1)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
  return embed


def retrieval(embed, vocab, world, src: str, tgt: str, other_entity: bool = False) -> float:
  entities = sorted(world.kb.types)
  hits = total = 0
  for k, e in enumerate(entities):
    relations = knowledge.ENTITY_TYPES[world.kb.types[e]]
    twin = next(x for x in entities[k + 1:] + entities
                if x != e and world.kb.types[x] == world.kb.types[e])
    target_entity, target_value = (twin, OTHER_VALUE) if other_entity else (e, VALUE)
    s = embed(vocab, [world.grammars[src].sentence("fact", E=e, R=r, V=VALUE) for r in relations])
    t = embed(vocab, [world.grammars[tgt].sentence("fact", E=target_entity, R=r, V=target_value)
                      for r in relations])
    hits += int(np.sum(np.argmax(s @ t.T, axis=1) == np.arange(len(relations))))
    total += len(relations)
  return hits / total


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--output")
  args = parser.parse_args()
  world = Oracle.from_data_dir(f"{args.workdir}/data").world
  vocab = seqio.SentencePieceVocabulary(f"{args.workdir}/data/spm/sentencepiece.model")
  stages = f"{args.workdir}/stages"
  models = {"random init": encoder(f"{stages}/pretrain/model", random_init=True),
            "pretrained base": encoder(f"{stages}/pretrain/model"),
            "en SFT": encoder(f"{stages}/sft_en/model"),
            "en RM": encoder(f"{stages}/rm_en/model", score_head=True)}
  table = {}
  for name, embed in models.items():
    row = {f"{a} -> {b}": retrieval(embed, vocab, world, a, b) for a, b in PAIRS}
    row.update({f"{a} -> {a}, other entity": retrieval(embed, vocab, world, a, a, True)
                for a in ("en", "es")})
    table[name] = {k: round(v, 3) for k, v in row.items()}
    print(name, table[name], flush=True)
  if args.output:
    with open(args.output, "w", encoding="utf-8") as f:
      json.dump({"workdir": args.workdir, "entities": len(world.kb.types), "retrieval": table}, f,
                indent=1)


if __name__ == "__main__":
  main()
