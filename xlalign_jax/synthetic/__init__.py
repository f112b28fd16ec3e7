"""The synthetic multilingual world: the embedded default data, written in the real formats.

  write_world(out_dir, langs, seed, **size_knobs)   writes DATA_DIR (see writer.py)
  oracle.Oracle.from_data_dir(data_dir).quality(lang, input_text, output_text)   the gold judge
  formats                                           task input formats shared with the seqio tasks

The six languages are synthetic stand-ins for de, en, es, ru, tr and vi, not the real languages.
"""
from xlalign_jax.synthetic.writer import write_world

__all__ = ["write_world"]
