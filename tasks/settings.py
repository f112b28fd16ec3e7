"""Where the tasks read their data, and their vocabulary: both resolved at run time, not at import.

The data directory comes from, in order: `configure(data_dir=...)` called in Python (the
`--data_dir` flag of commands), the gin binding `xlalign_tasks.configure.data_dir = %DATA_DIR`,
the environment variable XLALIGN_DATA_DIR. The vocabulary comes from `configure(vocab_path=...)`,
the gin binding `xlalign_tasks.configure.vocab_path`, XLALIGN_VOCAB, and otherwise
DATA_DIR/spm/sentencepiece.model (the synthetic world's); real runs give mT5's sentencepiece model.

Every task shares the one `VOCABULARY` object, a `seqio.Vocabulary` that loads the sentencepiece
model on first use, so mixtures and feature converters see a single vocabulary.
"""
import os
from typing import Optional

import gin
import seqio

from xlalign_jax.data import files
from xlalign_jax.errors import UserError

DATA_DIR_ENV = "XLALIGN_DATA_DIR"
VOCAB_ENV = "XLALIGN_VOCAB"
WORLD_SPM = "spm/sentencepiece.model"

_explicit = {}  # values passed to configure() in Python; they win over gin and the environment


@gin.configurable(module="xlalign_tasks")
def configure(data_dir: Optional[str] = None, vocab_path: Optional[str] = None,
              strict: Optional[bool] = None) -> None:
  """Sets the data directory, the sentencepiece model and strict reading for the tasks.

  Arguments left None keep their current value. Also the gin entry point: a binding such as
  `xlalign_tasks.configure.data_dir = %DATA_DIR` needs no call; tasks read it when used.
  `strict=True` makes bad input in data files an error instead of skipped and counted.
  """
  for name, value in (("data_dir", data_dir), ("vocab_path", vocab_path)):
    if value is not None:
      _explicit[name] = os.fspath(value)
  if strict is not None:
    _explicit["strict"] = bool(strict)


def _setting(name: str, env: Optional[str] = None):
  if name in _explicit:
    return _explicit[name]
  bound = gin.get_bindings(configure).get(name)
  if bound is not None:
    return bound
  return os.environ.get(env) if env else None


def strict() -> bool:
  return bool(_setting("strict"))


def data_dir() -> str:
  path = _setting("data_dir", DATA_DIR_ENV)
  if not path:
    raise UserError("no data directory: pass --data_dir, bind xlalign_tasks.configure.data_dir in "
                    f"gin, or set {DATA_DIR_ENV}")
  if not files.exists(path):
    raise UserError(f"data directory {path} does not exist")
  return path.rstrip("/")


def vocab_path() -> str:
  path = _setting("vocab_path", VOCAB_ENV)
  if path:
    if not files.exists(path):
      raise UserError(f"sentencepiece model {path} not found")
    return path
  world_spm = f"{data_dir()}/{WORLD_SPM}"
  if files.exists(world_spm):
    return world_spm
  raise UserError(f"no vocabulary: {world_spm} does not exist; pass --vocab (for real data, mT5's "
                  "sentencepiece model) or bind xlalign_tasks.configure.vocab_path in gin")


class LazyVocabulary(seqio.Vocabulary):
  """The configured sentencepiece model, loaded when first used (again if the setting changes)."""

  def __init__(self):
    super().__init__(extra_ids=0)
    self._loaded = {}  # path -> SentencePieceVocabulary

  @property
  def vocabulary(self) -> seqio.SentencePieceVocabulary:
    """The configured model; raises a UserError if there is none."""
    path = vocab_path()
    if path not in self._loaded:
      self._loaded[path] = seqio.SentencePieceVocabulary(path)
    return self._loaded[path]

  @property
  def bos_id(self) -> Optional[int]:
    return self.vocabulary.bos_id

  @property
  def eos_id(self) -> Optional[int]:
    return self.vocabulary.eos_id

  @property
  def unk_id(self) -> Optional[int]:
    return self.vocabulary.unk_id

  @property
  def vocab_size(self) -> int:
    return self.vocabulary.vocab_size

  @property
  def _base_vocab_size(self) -> int:
    return self.vocabulary.vocab_size

  def _encode(self, s):
    return self.vocabulary.encode(s)

  def _decode(self, ids):
    return self.vocabulary.decode(ids)

  def _encode_tf(self, s):
    return self.vocabulary.encode_tf(s)

  def _decode_tf(self, ids):
    return self.vocabulary.decode_tf(ids)

  def __eq__(self, other):
    return isinstance(other, LazyVocabulary)  # all resolve to the same configured model

  def __hash__(self):
    return hash(LazyVocabulary)

  def __str__(self):
    return "LazyVocabulary(the configured sentencepiece model; see xlalign_tasks.settings)"


VOCABULARY = LazyVocabulary()
