"""Gin at the edges: parse `--gin_file` / `--gin.KEY=VALUE` flags (T5X style) into a config.

Unknown configurables or parameters fail loudly (gin's default); missing %gin.REQUIRED macros name
themselves. Values that aren't gin literals are taken as strings, so `--gin.MODEL_DIR=/tmp/x` works
without quotes.
"""
import argparse
import ast
import importlib.resources
import logging
import pathlib
import re
from typing import List, Sequence

import gin

from xlalign_jax.errors import UserError

REPO_GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin_configs"


def search_paths() -> List[str]:
  """The repository's gin_configs (source checkout) and the installed `xlalign_jax.gin_configs`."""
  paths = [REPO_GIN_DIR]
  try:
    paths.append(pathlib.Path(str(importlib.resources.files("xlalign_jax.gin_configs"))))
  except ModuleNotFoundError:
    pass
  return [str(p) for p in paths if p.is_dir()]


def _literal(value: str) -> str:
  try:
    ast.literal_eval(value)
    return value
  except (ValueError, SyntaxError):
    if value.startswith(("@", "%")):
      return value
    return repr(value)


def bindings_from_flags(extra_args: Sequence[str]) -> List[str]:
  """`--gin.KEY=VALUE` (or `--gin.KEY VALUE`) -> gin binding lines `KEY = VALUE`."""
  bindings, args = [], list(extra_args)
  while args:
    arg = args.pop(0)
    if not arg.startswith("--gin."):
      raise UserError(f"unrecognized argument {arg!r} (gin bindings are --gin.KEY=VALUE)")
    key, sep, value = arg[len("--gin."):].partition("=")
    if not sep:
      if not args:
        raise UserError(f"{arg} needs a value")
      value = args.pop(0)
    bindings.append(f"{key} = {_literal(value)}")
  return bindings


def _hide_search_misses(record: logging.LogRecord) -> bool:
  return not str(record.msg).startswith("Path not found")


def parse(gin_files: Sequence[str], bindings: Sequence[str]) -> None:
  """Parse gin files (paths, or relative to gin_configs/) plus bindings; one-line errors."""
  for path in search_paths():
    gin.add_config_file_search_path(path)
  resolved = []
  for f in gin_files:
    p = pathlib.Path(f)
    if not p.exists():
      relative = f[len("gin_configs/"):] if f.startswith("gin_configs/") else f
      candidates = [pathlib.Path(s) / relative for s in search_paths()]
      found = [c for c in candidates if c.exists()]
      if not found:
        raise UserError(f"gin file not found: {f}")
      p = found[0]
    resolved.append(str(p))
  # gin logs an error for every search path an include is not under, before finding it in the next.
  logging.getLogger().addFilter(_hide_search_misses)
  gin.clear_config()  # each command starts from a clean configuration
  try:
    gin.parse_config_files_and_bindings(resolved, list(bindings), finalize_config=False)
    # Finalizing runs gin's checks (e.g. a `%gin.REQUIRED` macro nothing overrode); the config is
    # left unlocked so that modules imported later by a stage can still register configurables.
    with gin.unlock_config():
      gin.finalize()
  except (ValueError, KeyError, TypeError, ImportError, SyntaxError, IOError) as exc:
    message = " ".join(str(exc).split())
    required = re.search(r"(\w+)/macro\.value set to `%gin\.REQUIRED`", message)
    if required:  # gin names its internal binding; say which flag sets the macro
      name = required.group(1)
      message = (f"macro {name} is required: set it with --gin.{name}=... (each run file's "
                 "header lists its required macros)")
    raise UserError(f"gin config: {message}") from None


def call_configured(fn, *args, **kwargs):
  """Call a gin configurable, turning gin's errors about missing/unknown bindings into UserError."""
  try:
    return fn(*args, **kwargs)
  except RuntimeError as exc:
    if str(exc).startswith("Required bindings"):
      raise UserError(f"gin config: {' '.join(str(exc).split())}") from None
    raise


# ----------------------------------------------------------------- mesh flags of inference commands

DEFAULT_MESH = "mesh/data_parallel.gin"


def positive_int(text: str) -> int:
  """argparse type of counts and sizes: 0 or less would fail deep inside a run, not here."""
  if not text.strip().isdigit() or int(text) < 1:
    raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
  return int(text)


def add_mesh_arguments(parser) -> None:
  """`--mesh` and gin flags for commands that load models outside `xlalign run` (score, rm-eval,
  generate, bon, rm-probe): large models need the experiment's sharding here too."""
  parser.add_argument("--mesh", default=DEFAULT_MESH,
                      help="mesh preset gin file (path, or relative to gin_configs/), e.g. "
                           "mesh/fsdp.gin; refine it with --gin.MeshConfig.KEY=VALUE, and on a "
                           f"pod add --gin.MULTI_HOST=True (default: {DEFAULT_MESH})")


def mesh_config_from_args(args):
  """The MeshConfig that `--mesh` and the `--gin.KEY=VALUE` flags (args.extra) describe; a
  multi-host one joins its job here. Call it first: joining must come before any JAX call."""
  from xlalign_jax import partitioning
  parse([args.mesh], bindings_from_flags(args.extra))
  config = call_configured(partitioning.MeshConfig)
  partitioning.maybe_initialize_distributed(config)
  return config
