"""Check a config dataclass's values against its field annotations, so that a gin value of the
wrong type fails as one line naming the field before any work starts.

Gin takes whatever a binding parses to: `--gin.ExperimentConfig.langs=en,es` is the string
'en,es' (which the run would read as five one-letter languages), and `rm_lr=abc` a string that
fails only when the RM stage builds its optimizer, after pretraining and SFT.
"""
import collections.abc
import dataclasses
import numbers
import typing
from typing import Any

import gin

from xlalign_jax.errors import UserError


def check_field_types(config: Any) -> None:
  """Raise UserError naming the first field of the dataclass `config` whose value does not match
  its annotation (ints pass for floats, lists for tuples; nested configs check themselves).

  A list given for a tuple field (gin's `[...]`) is stored as a tuple, so that a config equals,
  hashes and records the same however its tuples were written (frozen dataclasses included)."""
  hints = typing.get_type_hints(type(config))
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if value is gin.REQUIRED:  # gin itself reports a required binding that nothing set
      continue
    expected = hints[field.name]
    if not _matches(value, expected):
      hint = ("; a tuple is written ('a', 'b'), one of one item ('a',)"
              if isinstance(value, str) and _expects_tuple(expected) else "")
      raise UserError(f"{type(config).__name__}.{field.name} must be {_describe(expected)}, got "
                      f"{value!r} ({_article(type(value).__name__)}){hint}")
    as_tuples = _lists_to_tuples(value, expected)
    if as_tuples is not value:
      object.__setattr__(config, field.name, as_tuples)


def _lists_to_tuples(value: Any, expected: Any) -> Any:
  """`value` (which matches `expected`) with its lists under tuple annotations made tuples; the
  same object when there are none."""
  origin, args = typing.get_origin(expected), typing.get_args(expected)
  if origin is typing.Union:
    return next((_lists_to_tuples(value, a) for a in args if _matches(value, a)), value)
  if origin is tuple:
    items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
    converted = tuple(_lists_to_tuples(v, a) for v, a in zip(value, items))
    unchanged = isinstance(value, tuple) and all(c is v for c, v in zip(converted, value))
    return value if unchanged else converted
  return value


def _matches(value: Any, expected: Any) -> bool:
  origin, args = typing.get_origin(expected), typing.get_args(expected)
  if expected is Any:
    return True
  if expected is type(None):
    return value is None
  if origin is typing.Union:
    return any(_matches(value, a) for a in args)
  if expected is bool:
    return isinstance(value, bool)
  if expected is int:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
  if expected is float:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
  if origin is tuple:
    if not isinstance(value, (tuple, list)):
      return False
    if len(args) == 2 and args[1] is Ellipsis:
      return all(_matches(v, args[0]) for v in value)
    return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
  if origin in (dict, collections.abc.Mapping):
    return isinstance(value, collections.abc.Mapping) and all(
        _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
  if isinstance(expected, type):
    return isinstance(value, expected)
  return True  # an annotation this checker does not read (Callable, ...)


def _expects_tuple(expected: Any) -> bool:
  if typing.get_origin(expected) is typing.Union:
    return any(_expects_tuple(a) for a in typing.get_args(expected))
  return typing.get_origin(expected) is tuple


def _describe(expected: Any) -> str:
  origin, args = typing.get_origin(expected), typing.get_args(expected)
  if expected is Any:
    return "anything"
  if expected is type(None):
    return "None"
  if origin is typing.Union:
    return " or ".join(_describe(a) for a in args)
  if origin is tuple:
    if len(args) == 2 and args[1] is Ellipsis:
      return f"a tuple of {_plural(args[0])}"
    return "a tuple (" + ", ".join(_bare(a) for a in args) + ")"
  if origin in (dict, collections.abc.Mapping):
    return f"a dict of {_bare(args[0])} -> {_bare(args[1])}"
  return _article(_bare(expected))


def _bare(expected: Any) -> str:
  """A type's name without an article: 'str', 'tuple (str, str)'."""
  if isinstance(expected, type) and typing.get_origin(expected) is None:
    return expected.__name__
  text = _describe(expected)
  return text[2:] if text.startswith("a ") else text[3:] if text.startswith("an ") else text


def _plural(expected: Any) -> str:
  if typing.get_origin(expected) is tuple:
    noun = "pairs" if len(typing.get_args(expected)) == 2 else "tuples"
    return f"{_bare(expected)} {noun}".replace("tuple (", "(")
  return _bare(expected)


def _article(name: str) -> str:
  return ("an " if name[:1] in "aeiou" else "a ") + name
