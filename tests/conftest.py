"""Fake 8 CPU devices before jax is imported, so sharding is exercised in every test."""
import os
import pathlib

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data():
  """Path to ../shared/data; tests using it skip when a user's clone has no ../shared."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"shared test data not found at {SHARED_DATA} (only present in the project workspace)")
  return SHARED_DATA
