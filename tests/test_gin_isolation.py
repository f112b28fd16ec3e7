"""Gin bindings do not leak from one test into the next (conftest clears them around each test).

The two tests run in file order: the first leaves smoke_sft.gin's 4x2 fsdp+tensor mesh bound, the
second must still get the default mesh from `MeshConfig()`, as test_ppo and test_train_resume do.
"""
from xlalign_jax import gin_utils, partitioning


def test_parsing_a_gin_file_binds_the_mesh():
  gin_utils.parse(["gin_configs/experiments/smoke_sft.gin"], ["MODEL_DIR = '/tmp/unused'"])
  assert partitioning.MeshConfig().model == 2


def test_the_next_test_gets_the_default_mesh():
  assert partitioning.MeshConfig() == partitioning.MeshConfig(
      data=-1, model=1, logical_axis_rules=partitioning.DATA_PARALLEL_RULES)
