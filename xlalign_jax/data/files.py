"""Opening and listing data files, local or remote (gs://), plain or gzipped.

Local files use the standard library; paths with a scheme go through tf.io.gfile (imported then).
"""
import glob
import gzip
import os
import zlib
from typing import BinaryIO, Iterator, List, Tuple

from xlalign_jax.errors import UserError


def _is_remote(path: str) -> bool:
  return "://" in path


def exists(path: str) -> bool:
  if _is_remote(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.exists(path)
  return os.path.exists(path)


def list_files(directory: str, patterns: Tuple[str, ...]) -> List[str]:
  """Sorted paths in `directory` matching any of the glob `patterns`."""
  if _is_remote(directory):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    found = [p for pat in patterns for p in tf.io.gfile.glob(f"{directory}/{pat}")]
  else:
    found = [p for pat in patterns for p in glob.glob(os.path.join(directory, pat))]
  return sorted(set(found))


def signature(path: str) -> Tuple[str, int, int]:
  """(path, mtime, size): a cache key that changes when the file does."""
  if _is_remote(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    st = tf.io.gfile.stat(path)
    return path, st.mtime_nsec, st.length
  st = os.stat(path)
  return path, st.st_mtime_ns, st.st_size


def _open_binary(path: str) -> BinaryIO:
  if _is_remote(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    f = tf.io.gfile.GFile(path, "rb")
  else:
    f = open(path, "rb")
  return gzip.GzipFile(fileobj=f) if path.endswith(".gz") else f


def read_lines(path: str) -> Iterator[Tuple[int, bytes]]:
  """Yields (1-based line number, raw line) of a text file, gunzipping `.gz` files.

  Lines stay bytes so a reader can count an undecodable line instead of failing on the file.
  """
  if not exists(path):
    raise UserError(f"{path}: file not found")
  try:
    with _open_binary(path) as f:
      yield from enumerate(f, start=1)
  except (OSError, EOFError, zlib.error) as exc:  # truncated or not really gzip
    raise UserError(f"{path}: cannot read file: {exc}") from exc
