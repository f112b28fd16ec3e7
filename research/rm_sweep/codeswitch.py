"""Run an xlalign command or a research script in a world whose pretraining text code-switches.

  python research/rm_sweep/codeswitch.py --switch 0.3 xlalign demo --workdir W

In the world's pretraining documents every sentence is in the document's language, so a model
can tie en's relation words to es's only through the same facts recurring in separate documents
(and entity names and numbers, the only shared tokens). Real multilingual web text also mixes
languages within a page. Here each sentence of a pretraining document is, with probability
`--switch`, written in another of the world's languages (drawn uniformly), so that a relation word
of one language and the value it takes appear in the context of the other language's words. Only
the pretraining text changes: the Seahorse and OpenAssistant data, the oracle and the raters are the
world's own, so only the command that writes the world (`xlalign demo` or `xlalign synth`) needs
this wrapper.
"""
from xlalign_jax.synthetic import content, writer

import wrap


def install(switch: float) -> None:
  write_pretrain = writer._write_pretrain  # pylint: disable=protected-access
  langs_of_world = []

  def pretrain_docs(rng, world, lang, count):  # writer's, with each sentence's language drawn
    others = [code for code in langs_of_world if code != lang]
    docs = []
    for _ in range(count):
      items = writer._pretrain_items(rng, world)  # pylint: disable=protected-access
      docs.append(" ".join(
          content.render(world.grammars[rng.choice(others) if rng.random() < switch else lang],
                         [item]) for item in items))
    return docs

  def patched_write_pretrain(out_dir, world, langs, seed, sizes, counts):
    langs_of_world[:] = langs
    return write_pretrain(out_dir, world, langs, seed, sizes, counts)

  writer._pretrain_docs = pretrain_docs  # pylint: disable=protected-access
  writer._write_pretrain = patched_write_pretrain  # pylint: disable=protected-access


if __name__ == "__main__":
  wrap.main(__doc__.split("\n")[0], "switch", install)
