"""Counting of skipped input items, shared by the file readers.

Bad input (a malformed row, a tree with a missing field) is skipped and counted by reason, or raised
as a `UserError` in strict mode. Items dropped by policy (a synthetic message, an Unsure rating) are
counted but never raise. `finish()` logs the counts once per file and fails on a file with nothing
usable in it.
"""
import collections
from typing import Optional

from absl import logging

from xlalign_jax.errors import UserError


class SkipCounter:
  """Counts what one file yields and what it skips."""

  def __init__(self, path, unit: str, strict: bool = False):
    self.path = str(path)
    self.unit = unit  # what a usable item is called in messages: "rows", "trees"
    self.strict = strict
    self.used = 0
    self.bad = collections.Counter()
    self.dropped = collections.Counter()

  def skip(self, reason: str, where: Optional[str] = None) -> None:
    """Records one item of bad input; in strict mode raises naming the file and place."""
    if self.strict:
      place = f"{self.path}:{where}" if where else self.path
      raise UserError(f"{place}: {reason} (strict mode; turn it off to skip and count such input)")
    self.bad[reason] += 1

  def drop(self, reason: str, n: int = 1) -> None:
    """Records items left out by policy (not an input error)."""
    self.dropped[reason] += n

  def keep(self, n: int = 1) -> None:
    self.used += n

  def summary(self) -> str:
    parts = [f"{self.used} {self.unit} used"]
    if self.bad:
      parts.append("skipped as bad input: " + _fmt(self.bad))
    if self.dropped:
      parts.append("dropped: " + _fmt(self.dropped))
    return f"{self.path}: " + "; ".join(parts)

  def finish(self) -> "SkipCounter":
    """Logs the counts; raises if the file gave no usable item."""
    if self.used == 0:
      raise UserError(f"{self.path}: no usable {self.unit} in this file ({self.summary()})")
    if self.bad:
      logging.warning("%s", self.summary())
    else:
      logging.info("%s", self.summary())
    return self


def _fmt(counts: collections.Counter) -> str:
  return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
