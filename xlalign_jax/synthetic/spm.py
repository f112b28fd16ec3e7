"""Train the world's sentencepiece model with the T5 / mT5 id convention (pad 0, eos 1, unk 2).

Training is single-threaded on the text in the order given, which makes the model file
byte-identical for the same text.

The unigram trainer only seeds pieces from substrings found in at least two distinct
whitespace-separated words, so a word that always appears in one form (an instruction word, a
function word) would be spelled out in fragments however frequent it is. A glossary line with each
of the `words` also followed by a period gives every one a second form, and EM then keeps those
that are frequent enough.
"""
import io
import os
from typing import Iterable, Sequence

MODEL_NAME = "sentencepiece"  # DATA_DIR/spm/sentencepiece.model and .vocab


def train(lines: Iterable[str], words: Sequence[str], out_dir: str, vocab_size: int) -> str:
  """Trains a unigram model on `lines`, seeding `words`; returns the path of the .model file."""
  # pylint: disable=import-outside-toplevel  (only `synth` needs sentencepiece)
  import sentencepiece
  from sentencepiece import sentencepiece_model_pb2

  model = io.BytesIO()  # not model_prefix: the model would record the output path
  sentencepiece.SentencePieceTrainer.train(
      sentence_iterator=iter([" ".join(line.split()) for line in lines]
                             + [" ".join(f"{word}." for word in words)]),
      model_writer=model,
      model_type="unigram",
      vocab_size=vocab_size,
      hard_vocab_limit=False,  # a small world may support fewer pieces; never more
      character_coverage=1.0,  # every letter of every script is a piece: no unknowns
      pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      num_threads=1,
      shuffle_input_sentence=False,
      input_sentence_size=0,
      max_sentence_length=16384,
      minloglevel=2)
  os.makedirs(out_dir, exist_ok=True)
  prefix = os.path.join(out_dir, MODEL_NAME)
  with open(prefix + ".model", "wb") as f:
    f.write(model.getvalue())
  proto = sentencepiece_model_pb2.ModelProto.FromString(model.getvalue())
  with open(prefix + ".vocab", "w", encoding="utf-8") as f:  # as spm_train writes it
    f.writelines(f"{p.piece}\t{p.score:g}\n" for p in proto.pieces)
  return prefix + ".model"
