"""The xlalign command restarts itself with glibc's malloc asking for transparent huge pages."""
import os
import platform
import subprocess
import sys

import pytest

from xlalign_jax import cli, huge_pages

GLIBC = ("glibc", "2.36")


@pytest.mark.parametrize("environ, thp, libc, expected", [
    ({}, "madvise", GLIBC, True),
    ({}, "madvise", ("glibc", "2.31"), False),  # no such tunable before 2.35
    ({}, "madvise", ("", ""), False),  # another C library
    ({}, "always", GLIBC, False),  # huge pages without asking
    ({}, "never", GLIBC, False),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "madvise", GLIBC, False),  # the user's own
    ({"XLALIGN_HUGE_PAGES": "0"}, "madvise", GLIBC, False),
])
def test_when_the_command_restarts(environ, thp, libc, expected):
  assert huge_pages.wanted(environ, thp, libc) is expected


def test_the_command_restarts_as_itself_with_the_tunable(monkeypatch):
  calls = []

  def execve(path, args, env):
    calls.append((path, args, env))
    raise SystemExit(0)
  monkeypatch.setattr(os, "execve", execve)
  monkeypatch.setattr(huge_pages, "_thp_mode", lambda: "madvise")
  monkeypatch.setattr(platform, "libc_ver", lambda: GLIBC)
  monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
  monkeypatch.delenv("XLALIGN_HUGE_PAGES", raising=False)
  monkeypatch.setattr(sys, "argv", ["/venv/bin/xlalign", "demo", "--seed", "1"])
  with pytest.raises(SystemExit):
    cli.main()
  (path, args, env), = calls
  assert path == sys.executable
  assert args == [sys.executable, "-m", "xlalign_jax.cli", "demo", "--seed", "1"]
  assert env["GLIBC_TUNABLES"] == huge_pages.TUNABLE
  calls.clear()
  assert cli.main(["--help"]) == 0  # a call from Python with its arguments never restarts
  assert calls == []


PROBE = """
import ctypes, os
from xlalign_jax import huge_pages
huge_pages.reexec_if_wanted()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
size = 64 << 20
buffer = libc.malloc(size)
ctypes.memset(buffer, 1, size)
eligible, inside = None, False
for line in open("/proc/self/smaps"):  # the mapping that holds the buffer: may it be huge?
  head = line.split()[0]
  if "-" in head and ":" not in head:
    start, end = (int(x, 16) for x in head.split("-"))
    inside = start <= buffer < end
  elif inside and head == "THPeligible:":
    eligible = line.split()[1]
print(os.environ.get("GLIBC_TUNABLES"), eligible)
"""


@pytest.mark.skipif(not huge_pages.wanted({}, huge_pages._thp_mode(), platform.libc_ver()),
                    reason="needs glibc 2.35+ and transparent huge pages in madvise mode")
def test_a_large_malloc_may_use_huge_pages_after_the_restart(tmp_path):
  probe = tmp_path / "probe.py"
  probe.write_text(PROBE)
  env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "XLALIGN_HUGE_PAGES")}
  run = lambda extra: subprocess.run([sys.executable, str(probe)], env={**env, **extra},
                                     capture_output=True, text=True, check=True).stdout.split()
  # Eligibility, not backing: whether the kernel found free huge pages at that moment varies.
  assert run({}) == [huge_pages.TUNABLE, "1"]
  assert run({"XLALIGN_HUGE_PAGES": "0"}) == ["None", "0"]
