"""What produced a result: the command, its settings and the software, written next to it."""
import dataclasses
import datetime
import importlib.metadata
import json
import pathlib
import platform
import shlex
from typing import Any, Dict, Iterable, List, Mapping, Sequence

import numpy as np

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "seqio", "gin-config")


def software_versions() -> Dict[str, str]:
  import xlalign_jax
  versions = {"xlalign_jax": xlalign_jax.__version__, "python": platform.python_version()}
  for package in PACKAGES:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  return versions


def json_default(x):
  """`json.dumps` default for result files: NumPy scalars as numbers, dataclasses as dicts."""
  if isinstance(x, (np.floating, np.integer)):
    return x.item()
  if dataclasses.is_dataclass(x):
    return dataclasses.asdict(x)
  return str(x)


def plain_settings(config: Any) -> Dict[str, Any]:
  """A config dataclass as JSON values: what a recorded copy of it reads back as."""
  return json.loads(json.dumps(dataclasses.asdict(config), default=json_default))


def changed_settings(recorded: Mapping[str, Any], current: Mapping[str, Any],
                     names: Iterable[str]) -> List[str]:
  """"name=old (now new)" for each of `names` that both hold with different values (a setting
  one of them lacks, e.g. a field added to the config since, is no change)."""
  return [f"{n}={recorded[n]!r} (now {current[n]!r})" for n in names
          if n in recorded and n in current and recorded[n] != current[n]]


def record_path(output: str) -> pathlib.Path:
  """`OUT.jsonl` -> `OUT.jsonl.config.json`: the record of the run that wrote OUT.jsonl."""
  path = pathlib.Path(output)
  return path.with_name(path.name + ".config.json")


def write_command_record(output: str, command: str, argv: Sequence[str], args: Any) -> None:
  """Writes, next to a command's output file, the command line, its parsed flags, the operative
  gin configuration (where the command used gin) and the software versions."""
  import gin  # after the command ran: importing gin is cheap, and it holds the bindings it used
  from xlalign_jax import fileio
  flags = {k: v for k, v in vars(args).items() if k != "extra"}
  record = {"command": shlex.join(["xlalign", command, *argv]),
            "flags": json.loads(json.dumps(flags, default=str)),
            "gin": gin.config_str() or None,
            "machine": platform.machine(),
            "versions": software_versions(),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
  fileio.write_text(record_path(output), json.dumps(record, indent=2))
