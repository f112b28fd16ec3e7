"""Fake 8 CPU devices before jax is imported, so sharding is exercised in every test."""
import atexit
import os
import pathlib
import shutil
import tempfile

# Tests run tiny models, so compiling is most of their time. LLVM unoptimised (-O0) and XLA:CPU's
# elemental emitters instead of its fusion emitters compile test_ppo's update in 6 s instead of 14
# (each flag alone: 8 s and 54 s; the preset --xla_cpu_opt_preset=FAST_COMPILE: 12 s) and halve
# the suite's CPU time (README); the programs compute the same up to float rounding. Subprocesses
# inherit the flags, so they share the compilation cache, whose keys include them. A flag the user
# put in XLA_FLAGS stays as they set it. (XLA aborts on a flag it does not know: check these when
# jaxlib, pinned in setup.py, moves.)
TEST_COMPILE_FLAGS = {"--xla_backend_optimization_level": "0",
                      "--xla_cpu_use_fusion_emitters": "false"}
_flags = os.environ.get("XLA_FLAGS", "").split() + ["--xla_force_host_platform_device_count=8"]
for _flag, _value in TEST_COMPILE_FLAGS.items():
  if not any(given.startswith(_flag + "=") for given in _flags):
    _flags.append(f"{_flag}={_value}")
os.environ["XLA_FLAGS"] = " ".join(_flags)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# One persistent compilation cache for the whole run, empty at its start: the tests' own programs,
# the commands they run in-process and those in subprocesses (which inherit the variable) share
# what they compile, and neither read nor fill the user's ~/.cache, so a run costs the same on a
# fresh machine (CI) as here.
if "XLALIGN_JAX_CACHE" not in os.environ:
  os.environ["XLALIGN_JAX_CACHE"] = tempfile.mkdtemp(prefix="xlalign_tests_jax_cache_")
  atexit.register(shutil.rmtree, os.environ["XLALIGN_JAX_CACHE"], True)

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data():
  """Path to ../shared/data; tests using it skip when a user's clone has no ../shared."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"shared test data not found at {SHARED_DATA} "
                "(only present in the project workspace)")
  return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache():
  from xlalign_jax import cli
  cli.enable_compilation_cache()


@pytest.fixture(autouse=True)
def _no_gin_bindings_across_tests():
  """Each test starts and ends without gin bindings. Otherwise a configurable called with its
  defaults, e.g. `MeshConfig()`, takes the bindings of whatever gin file an earlier test parsed
  (after `xlalign train` on smoke_sft.gin it is a 4x2 fsdp+tensor mesh), and results depend on
  the order the tests run in."""
  import gin
  gin.clear_config()
  yield
  gin.clear_config()


def _random_checkpoint(out, score_head: bool):
  """A real (random) params-only checkpoint of a 16-dim model, with a reward head if asked."""
  import flax.linen as nn
  import jax
  from xlalign_jax import checkpoints, training
  from xlalign_jax.config import ModelConfig
  config = ModelConfig(vocab_size=4096, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32)
  model = training.build_model(config, score_head=score_head)
  params = jax.jit(lambda r: nn.unbox(training.model_init_fn(model)(r)))(jax.random.PRNGKey(0))
  checkpoints.save_params(str(out), params, config)
  return out


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
  return _random_checkpoint(tmp_path_factory.mktemp("ckpt") / "small", score_head=False)


@pytest.fixture(scope="session")
def small_rm_checkpoint(tmp_path_factory):
  return _random_checkpoint(tmp_path_factory.mktemp("ckpt") / "small_rm", score_head=True)
