"""Result files in multi-host jobs: written once, atomically, after every process has them.

In a multi-host run every process runs every stage and computes the same results (the sampler
and the scorer gather their outputs on every host), so one copy is written, by process 0. Writing
to a temporary file renamed into place also means a killed run never leaves a half-written file
that a re-run would read. `barrier` holds the processes together between stages, so none reads a
file before process 0 has written it. With one process all three are the plain thing.
"""
import contextlib
import io
import os
import pathlib
from typing import Iterator, Optional, TextIO

import jax


def is_primary() -> bool:
  return jax.process_index() == 0


@contextlib.contextmanager
def open_for_write(path, newline: Optional[str] = None) -> Iterator[TextIO]:
  """A text file handle; on process 0 the file appears at `path` when the block ends without an
  error, on the other processes what is written is dropped."""
  path = pathlib.Path(path)
  if not is_primary():
    yield io.StringIO()
    return
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp")
  with tmp.open("w", encoding="utf-8", newline=newline) as f:
    yield f
  os.replace(tmp, path)


def write_text(path, text: str) -> None:
  with open_for_write(path) as f:
    f.write(text)


def per_process_name(name: str) -> str:
  """`name`, or with a multi-host job `STEM.processI.SUFFIX`: a file that every process writes
  for itself (a failure's traceback) without overwriting the others'."""
  if jax.process_count() == 1:
    return name
  path = pathlib.PurePath(name)
  return f"{path.stem}.process{jax.process_index()}{path.suffix}"


def barrier(name: str) -> None:
  """Wait until every process gets here (a no-op with one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)
