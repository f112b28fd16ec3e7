"""Transparent huge pages for malloc's large buffers, asked for before the process starts.

XLA:CPU (and PyTorch) allocate every step's large buffers through glibc's malloc, which maps them
fresh in 4 KiB pages and unmaps them when freed, so each step faults its buffers in again: three
mt5_small SFT steps cost 5.5M minor page faults. Where the kernel gives transparent huge pages to
memory that asks for them (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise), glibc 2.35+
asks for them with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`. Measured on the 2-core CPU
(bench/RESULTS.md, session 22): the mt5_small SFT step 7.78 -> 6.34 s, 0.3M faults.

glibc reads its tunables once, when a process starts, so the `xlalign` command and the benchmarks
start themselves again with the variable set (`reexec_if_wanted`), before anything else runs.

  XLALIGN_HUGE_PAGES=0   leaves the process as it is
  GLIBC_TUNABLES         when set by the user, is respected as given
"""
import os
import platform
import sys
from typing import Mapping, Optional, Sequence

TUNABLE = "glibc.malloc.hugetlb=1"
_THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def _thp_mode() -> str:
  """The kernel's THP mode ("always", "madvise" or "never"); "" where it is not told."""
  try:
    with open(_THP_MODE, encoding="ascii") as f:
      text = f.read()
  except OSError:
    return ""
  return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else ""


def wanted(environ: Mapping[str, str], thp_mode: str, libc: Sequence[str]) -> bool:
  """Whether to restart with TUNABLE: glibc 2.35+ (which has it), a kernel that gives huge pages
  to memory that asks (with "always" it gives them anyway), and nobody's choice overruled."""
  name, version = libc
  numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
  return (name == "glibc" and numbers >= (2, 35) and thp_mode == "madvise"
          and "GLIBC_TUNABLES" not in environ and environ.get("XLALIGN_HUGE_PAGES", "1") != "0")


def reexec_if_wanted(argv: Optional[Sequence[str]] = None) -> None:
  """Replaces this process by the same command (`sys.argv`, run by this Python) with TUNABLE set,
  where `wanted`; otherwise returns. The new process has the variable, so it does not restart."""
  if not sys.platform.startswith("linux") or not sys.executable:
    return
  if not wanted(os.environ, _thp_mode(), platform.libc_ver()):
    return
  argv = list(sys.argv if argv is None else argv)
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *argv], {**os.environ, "GLIBC_TUNABLES": TUNABLE})
