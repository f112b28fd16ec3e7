"""Commands that load models outside `xlalign run` (score, rm-eval, generate, bon, rm-probe) take a
mesh preset and gin flags: the numbers stay those of data parallelism, the parameters get
sharded."""
import argparse
import json

import numpy as np
import pytest

from xlalign_jax import cli, gin_utils, partitioning


def mesh_config(mesh, *flags):
  return gin_utils.mesh_config_from_args(argparse.Namespace(mesh=mesh, extra=list(flags)))


def test_the_default_preset_is_plain_data_parallelism():
  assert mesh_config(gin_utils.DEFAULT_MESH) == partitioning.MeshConfig()


def test_a_preset_refined_by_gin_flags():
  config = mesh_config("mesh/fsdp_tensor.gin", "--gin.MODEL_PARALLEL=4",
                       "--gin.MeshConfig.coordinator_address=10.0.0.1:1234")
  assert (config.data, config.model) == (-1, 4)
  assert ("embed", "data") in config.logical_axis_rules
  assert ("mlp", "model") in config.logical_axis_rules
  assert config.coordinator_address == "10.0.0.1:1234" and not config.initialize_distributed


def test_a_bad_mesh_flag_is_one_line(capsys, small_checkpoint, tmp_path):
  code = cli.main(["score", "--checkpoint", str(small_checkpoint), "--vocab", "x.model",
                   "--input", "x.jsonl", "--output", str(tmp_path / "o"),
                   "--gin.MeshConfig.bogus=1"])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and len(err) == 1 and "doesn't have a parameter named 'bogus'" in err[0]


def test_score_on_an_fsdp_tensor_mesh_equals_data_parallel(small_checkpoint, tmp_path,
                                                            shared_data, capsys):
  from xlalign_jax.score import Scorer
  rows = [{"inputs": f"article {i} " * (1 + i % 5), "targets": f"summary {i} " * (1 + i % 3)}
          for i in range(19)]  # not a multiple of the batch: the last batch is padded
  path = tmp_path / "in.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  spm = str(shared_data / "sentencepiece/t5_test_sentencepiece.model")
  logliks = {}
  for name, flags, mesh in (("dp", [], {"data": 8, "model": 1}),
                            ("fsdp_tensor", ["--mesh", "mesh/fsdp_tensor.gin"],
                             {"data": 4, "model": 2})):
    out = tmp_path / f"{name}.jsonl"
    assert cli.main(["score", "--checkpoint", str(small_checkpoint), "--vocab", spm,
                     "--input", str(path), "--output", str(out), "--batch_size", "8"]
                    + flags) == 0
    assert f"mesh {mesh}" in capsys.readouterr().out
    logliks[name] = np.array([json.loads(l)["loglik"] for l in out.read_text().splitlines()])
  np.testing.assert_allclose(logliks["fsdp_tensor"], logliks["dp"], rtol=1e-5, atol=1e-5)
  # The parameters really are split: 'embed' over the 4 data shards, 'mlp' over 2 model shards.
  scorer = Scorer(str(small_checkpoint), 8,
                  mesh_config=mesh_config("mesh/fsdp_tensor.gin"))
  kernel = scorer.params["decoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
  assert dict(scorer.mesh.shape) == {"data": 4, "model": 2}
  assert tuple(kernel.sharding.spec) == ("data", "model")
  assert kernel.addressable_shards[0].data.shape == (16 // 4, 32 // 2)
