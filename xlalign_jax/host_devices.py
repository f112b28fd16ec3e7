"""Opt-in: several XLA CPU devices in one process (`XLALIGN_CPU_DEVICES=N`), set before jax is
imported.

With XLA's single host device, the small matmuls of an mT5-tiny step run one at a time; with one
device per core the data-parallel shards run side by side. Measured on the 2-core machine with
N = 2 against 1 (bench/RESULTS.md, "Two host devices"): faster at mt5_tiny (SFT step 0.70 -> 0.80
of transformers' speed, sampling 4.6x -> 6.6x), much slower at mt5_small (SFT step 9.0 -> 16.1 s),
whose large matmuls already use both cores. So the default stays XLA's single device.

  XLALIGN_CPU_DEVICES=N   N host devices (the data-parallel mesh uses them all; batches must divide)
  XLA_FLAGS=--xla_force_host_platform_device_count=N   is respected as given
Accelerator backends ignore the flag (it sizes the host platform only).
"""
import os
import sys
from typing import Mapping, Optional

_FLAG = "--xla_force_host_platform_device_count"


def xla_flags(environ: Mapping[str, str]) -> Optional[str]:
  """The XLA_FLAGS value to set, or None to leave the environment as it is."""
  flags = environ.get("XLA_FLAGS", "")
  requested = environ.get("XLALIGN_CPU_DEVICES", "")
  if not requested or _FLAG in flags:
    return None
  if not requested.isdigit() or int(requested) < 1:
    raise ValueError(f"XLALIGN_CPU_DEVICES must be a positive integer, got {requested!r}")
  if int(requested) == 1:
    return None
  return f"{flags} {_FLAG}={int(requested)}".strip()


def _jax_imported() -> bool:
  return "jax" in sys.modules


def configure() -> None:
  """Sets XLA_FLAGS for this process; a no-op once jax is imported (the flag would not apply)."""
  if _jax_imported():
    return
  value = xla_flags(os.environ)
  if value is not None:
    os.environ["XLA_FLAGS"] = value
