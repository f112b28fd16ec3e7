"""Every gin file parses, and every stage of every experiment builds its model state abstractly
(jax.eval_shape: shapes, no memory), sharded by its mesh preset on 8 fake devices."""
import pathlib

import gin
import jax
import pytest

from xlalign_jax import experiment, gin_utils, partitioning, training
from xlalign_jax.config import ModelConfig

GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin_configs"
EXPERIMENTS = sorted(p.name for p in (GIN_DIR / "experiments").glob("*.gin"))
# Macros that real-run experiments leave to the command line.
REAL_RUN_MACROS = ["WORKDIR = '/tmp/w'", "DATA_DIR = '/tmp/d'", "VOCAB = '/tmp/v.model'",
                   "MT5_CHECKPOINT = '/tmp/ckpt'", "MODEL_DIR = '/tmp/m'",
                   "POLICY_CHECKPOINT = '/tmp/p'", "REWARD_CHECKPOINT = '/tmp/r'"]


def _parse(name):
  gin_utils.parse([str(GIN_DIR / "experiments" / name)], [])


@pytest.mark.parametrize("path",
                         sorted(str(p.relative_to(GIN_DIR)) for p in GIN_DIR.rglob("*.gin")))
def test_every_gin_file_documents_its_command_or_macros(path):
  text = (GIN_DIR / path).read_text()
  assert text.startswith("#"), f"{path} has no header comment"
  if path.startswith("runs/"):
    assert "Required macros" in text, f"{path} does not list its required macros"
  if path.startswith("experiments/"):
    assert "xlalign " in text.split("\n\n")[0], f"{path} does not state the command that runs it"


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n not in ("smoke_sft.gin",)])
def test_experiment_stages_build_abstractly(name):
  text = (GIN_DIR / "experiments" / name).read_text()
  if "ExperimentConfig" not in text:
    pytest.skip(f"{name} is a single training run, parsed by test_training_run_configs_parse")
  gin_utils.parse([str(GIN_DIR / "experiments" / name)],
                  [m for m in REAL_RUN_MACROS if m.split(" =")[0] in text])
  cfg = experiment.ExperimentConfig()
  exp = experiment.Experiment(cfg)
  names = [s.name for s in exp.stages()]
  assert names[-2:] == ["judge", "report"]
  assert [n for n in names if n.startswith("bon_")] == [f"bon_{l}" for l in cfg.langs]
  assert len([n for n in names if n.startswith("ppo_")]) == len(cfg.ppo_pairs)
  mesh = partitioning.create_mesh(cfg.mesh_config)
  rules = cfg.mesh_config.logical_axis_rules
  optimizer = training.make_optimizer(training.OptimizerConfig(cfg.optimizer))
  for score_head in (False, True):  # policy / reference, and reward / value models
    model = training.build_model(cfg.model_config, score_head=score_head)
    abstract, shardings = training.abstract_params(model, mesh, rules)
    opt_shapes = jax.eval_shape(optimizer.init, abstract)
    assert training.count_params(opt_shapes) > 0
    if training.count_params(abstract) > 1e9:  # large models must actually be split
      embedding = shardings["token_embedder"]["embedding"]
      assert not embedding.is_fully_replicated, f"{name}: embedding replicated"
  gin.clear_config()


@pytest.mark.parametrize("name", ["smoke_sft.gin", "ppo_tiny.gin"])
def test_training_run_configs_parse(name):
  if not (GIN_DIR / "experiments" / name).exists():
    pytest.skip(f"{name} not present")
  gin_utils.parse([str(GIN_DIR / "experiments" / name)], REAL_RUN_MACROS)
  assert gin.query_parameter("xlalign.train.trainer") is not None
  assert ModelConfig().vocab_size > 0
  gin.clear_config()
