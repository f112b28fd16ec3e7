"""Meshes, logical-axis rules, sharded initialisation and global batches.

Modules annotate arrays with logical axis names ('batch', 'embed', 'mlp', 'heads', 'vocab', ...);
a rules table maps them to the mesh axes ('data', 'model'). The presets live in gin_configs/mesh/.
Multi-host pods call `jax.distributed.initialize()` first; everything else is the same code on
one CPU, 8 fake CPU devices or a TPU pod.
"""
import contextlib
import dataclasses
import math
from typing import Any, Callable, Sequence, Tuple

import flax.linen as nn
import gin
import jax
import numpy as np
from absl import logging
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xlalign_jax import config_types
from xlalign_jax.errors import UserError

MESH_AXES = ("data", "model")
Rules = Tuple[Tuple[str, Any], ...]

# Pure data parallelism: parameters replicated, batch split over 'data'.
DATA_PARALLEL_RULES: Rules = (
    ("batch", "data"),
    ("vocab", None), ("embed", None), ("mlp", None), ("heads", None), ("kv", None),
    ("joined_kv", None), ("relpos_buckets", None), ("length", None),
)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """Mesh shape (-1 = all remaining devices) and the logical-axis rules table."""
  data: int = -1
  model: int = 1
  logical_axis_rules: Rules = DATA_PARALLEL_RULES
  # Multi-host: call jax.distributed.initialize() before touching devices. TPU VMs (and SLURM or
  # Open MPI jobs) discover the coordinator, process count and id; elsewhere (CPU or GPU hosts) set
  # them: coordinator "host:port", num_processes > 0, process_id >= 0.
  initialize_distributed: bool = False
  coordinator_address: str = ""
  num_processes: int = 0
  process_id: int = -1

  def __post_init__(self):
    config_types.check_field_types(self)


def maybe_initialize_distributed(config: MeshConfig) -> None:
  """Join the multi-host job once per process (every stage of `xlalign run` asks)."""
  if not config.initialize_distributed or jax.distributed.is_initialized():
    return
  explicit = {"coordinator_address": config.coordinator_address or None,
              "num_processes": config.num_processes or None,
              "process_id": config.process_id if config.process_id >= 0 else None}
  jax.distributed.initialize(**{k: v for k, v in explicit.items() if v is not None})
  logging.info("jax.distributed: process %d of %d", jax.process_index(), jax.process_count())


def create_mesh(config: MeshConfig) -> Mesh:
  """A ('data', 'model') mesh over all devices; a shape that doesn't fit is a UserError."""
  devices = jax.devices()
  n = len(devices)
  model = config.model
  data = config.data if config.data != -1 else (n // model if model > 0 else 0)
  if model <= 0 or data <= 0 or data * model != n:
    raise UserError(
        f"mesh data={config.data} x model={config.model} does not fit {n} device(s); set "
        f"MeshConfig.model to a divisor of {n} (on CPU, more devices come from "
        f"XLA_FLAGS=--xla_force_host_platform_device_count=8)")
  try:
    device_grid = mesh_utils.create_device_mesh((data, model), devices)
  except (AssertionError, NotImplementedError, ValueError):
    device_grid = np.asarray(devices).reshape(data, model)
  return Mesh(device_grid, MESH_AXES)


@contextlib.contextmanager
def activate(mesh: Mesh, rules: Rules):
  """Context in which logical sharding constraints inside modules resolve against `mesh`."""
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    yield


def logical_shardings(boxed_tree: Any, mesh: Mesh, rules: Rules) -> Any:
  """NamedShardings for a tree whose leaves carry logical axis metadata (eval_shape of init)."""
  specs = nn.get_partition_spec(boxed_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh, rules: Rules, ndim: int = 2) -> NamedSharding:
  """Sharding of a `[batch, ...]` array: batch over the axes the rules give it."""
  return nn.logical_to_mesh_sharding(PartitionSpec("batch", *([None] * (ndim - 1))), mesh, rules)


def batch_size_divisor(mesh: Mesh, rules: Rules) -> int:
  spec = batch_sharding(mesh, rules).spec[0]
  axes = spec if isinstance(spec, tuple) else (spec,) if spec else ()
  return math.prod(mesh.shape[a] for a in axes)


def check_batch_size(batch_size: int, mesh: Mesh, rules: Rules) -> None:
  divisor = batch_size_divisor(mesh, rules)
  if batch_size % divisor:
    raise UserError(f"batch size {batch_size} is not divisible by the {divisor} data-parallel "
                    f"shards of mesh {dict(mesh.shape)}; choose a multiple of {divisor}")


def shard_batch(batch: dict, mesh: Mesh, rules: Rules) -> dict:
  """Host-local NumPy batch -> globally sharded jax.Arrays (each process passes its own rows)."""
  return {
      k: jax.make_array_from_process_local_data(batch_sharding(mesh, rules, np.ndim(v)),
                                                np.asarray(v))
      for k, v in batch.items()
  }


def global_array(x: Any, sharding: NamedSharding) -> jax.Array:
  """A host array that every process holds in full (the same values) -> a jax.Array laid out as
  `sharding`, each process placing only its own devices' slices. jit refuses plain NumPy inputs
  with non-trivial shardings once there is more than one process."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def sharded_init(init_fn: Callable[[jax.Array], Any], rng: jax.Array, mesh: Mesh,
                 rules: Rules, select: Callable[[Any], Any] = lambda tree: tree
                 ) -> Tuple[Any, Any]:
  """Initialise parameters directly in their sharded layout (no full copy on one device).

  `init_fn(rng)` returns a tree with logical axis metadata (nn.with_logical_partitioning).
  Returns (params, shardings) with plain arrays, of the part of the tree `select` picks: XLA then
  drops the rest of the initialisation, which compiles in a fraction of the time, with the same
  values (flax derives each parameter's key from its path).
  """
  abstract = jax.eval_shape(init_fn, rng)
  shardings = select(logical_shardings(abstract, mesh, rules))
  with activate(mesh, rules):
    params = jax.jit(lambda r: select(nn.unbox(init_fn(r))), out_shardings=shardings)(rng)
  return params, shardings


def unsharded_large_params(params: Any, min_size: int) -> Sequence[str]:
  """Names of parameters with at least `min_size` elements that are fully replicated."""
  out = []
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if leaf.size >= min_size and leaf.sharding.is_fully_replicated and len(leaf.devices()) > 1:
      out.append(jax.tree_util.keystr(path))
  return out
