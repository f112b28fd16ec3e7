"""Orbax checkpoints: save every N steps, keep K, exact resume, self-describing directories.

Layout of a checkpoint root (MODEL_DIR/checkpoints, or the --out of `xlalign convert`):

  <root>/<step>/params        parameters (orbax PyTree, sharded arrays)
  <root>/<step>/opt_state     optimizer state (training runs only)
  <root>/<step>/meta          JSON: step, data batches consumed, ...
  <root>/<step>/model_config  JSON: the ModelConfig, so `--checkpoint` needs no model gin

Commands accept a MODEL_DIR, a checkpoint root, or one step directory.
"""
import os
import pathlib
import shutil
from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import orbax.checkpoint as ocp

from xlalign_jax import fileio
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError


def _is_step_dir(path: pathlib.Path) -> bool:
  return (path / "params").is_dir() and (path / "model_config").is_dir()


def _steps(root: pathlib.Path):
  return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and _is_step_dir(p))


def resolve(path: str) -> pathlib.Path:
  """MODEL_DIR, checkpoint root, step dir or an experiment's stage dir (its run is under
  `model/`) -> the step directory to read: a run's `best` (lowest validation loss) when it kept
  one, else its latest step. Absolute: orbax's tensorstore layer refuses relative paths."""
  p = pathlib.Path(path).absolute()
  if not p.exists():
    raise UserError(f"checkpoint not found: {path}")
  if _is_step_dir(p):
    return p
  for root in (p / "best", p / "checkpoints", p):
    if root.is_dir():
      steps = _steps(root)
      if steps:
        return root / str(steps[-1])
  if (p / "model").is_dir():
    return resolve(str(p / "model"))
  raise UserError(f"no checkpoint in {path} (expected <step>/params and <step>/model_config "
                  "written by xlalign train or xlalign convert)")


def load_model_config(path: str) -> ModelConfig:
  step_dir = resolve(path)
  restored = ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(step_dir / "model_config")
  return ModelConfig.from_dict(restored)


def has_param(path: str, name: str) -> bool:
  """Whether the checkpoint stores parameters under `name` (e.g. "decoder/score_head")."""
  node = ocp.StandardCheckpointer().metadata(resolve(path) / "params").item_metadata.tree
  for part in name.split("/"):
    if not isinstance(node, dict) or part not in node:
      return False
    node = node[part]
  return True


def _check_shapes(stored: Any, abstract: Any, where: pathlib.Path) -> None:
  """Compare stored parameter shapes with the model's before orbax sees them (clear errors)."""
  stored_shapes = {jax.tree_util.keystr(k): tuple(v.shape)
                   for k, v in jax.tree_util.tree_leaves_with_path(stored)}
  wanted = {jax.tree_util.keystr(k): tuple(v.shape)
            for k, v in jax.tree_util.tree_leaves_with_path(abstract)}
  missing = sorted(set(wanted) - set(stored_shapes))
  if missing and missing[0].startswith("['decoder']['logits_dense']") and any(
      k.startswith("['decoder']['score_head']") for k in stored_shapes):
    raise UserError(f"checkpoint {where} is a reward or value model (decoder/score_head, no LM "
                    "head); a policy (SFT or PPO) checkpoint is needed here")
  if missing:
    raise UserError(f"checkpoint {where} lacks parameter {missing[0]} that the model needs "
                    f"({len(missing)} missing in all)")
  for name, shape in wanted.items():
    if stored_shapes[name] != shape:
      raise UserError(f"checkpoint {where}: parameter {name} has shape {stored_shapes[name]} but "
                      f"the model expects {shape}")


def split_subtrees(tree: Any, prefixes: Sequence[str]) -> Tuple[Any, Dict[str, Any]]:
  """(tree without the subtrees at `prefixes` like "decoder/score_head", {prefix: its subtree})."""
  kept = jax.tree_util.tree_map(lambda x: x, tree)
  removed = {}
  for prefix in prefixes:
    *parents, leaf = prefix.split("/")
    node = kept
    for name in parents:
      node = node.get(name, {})
    if leaf in node:
      removed[prefix] = node.pop(leaf)
  return kept, removed


def restore_params(path: str, abstract_params: Any, fresh: Optional[Dict[str, Any]] = None,
                   new_params: Sequence[str] = ()) -> Any:
  """Parameters of a checkpoint, restored into the shardings of `abstract_params`
  (a tree of jax.ShapeDtypeStruct with .sharding). Parameters the model doesn't need are ignored
  (e.g. an SFT LM head when loading into a reward model); missing or mis-shaped ones are a
  UserError naming the parameter, except the `new_params` subtrees, taken from `fresh`
  ({prefix: subtree}, as `split_subtrees` returns them)."""
  step_dir = resolve(path)
  item = step_dir / "params"
  wanted, _ = split_subtrees(abstract_params, new_params)
  stored = ocp.StandardCheckpointer().metadata(item).item_metadata.tree
  _check_shapes(stored, wanted, step_dir)
  restore_args = ocp.checkpoint_utils.construct_restore_args(wanted)
  restored = ocp.PyTreeCheckpointer().restore(
      item, args=ocp.args.PyTreeRestore(item=wanted, restore_args=restore_args,
                                        partial_restore=True))
  if new_params:
    for prefix, subtree in fresh.items():
      *parents, leaf = prefix.split("/")
      node = restored
      for name in parents:
        node = node[name]
      node[leaf] = subtree
  return restored


_RESERVED_ITEMS = ("params", "opt_state", "meta", "model_config")


def _extra_items(extra: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  clash = sorted(set(extra or {}) & set(_RESERVED_ITEMS))
  if clash:
    raise ValueError(f"extra checkpoint items may not be named {clash}")
  return dict(extra or {})


class TrainCheckpointer:
  """Saves params + optimizer state + meta every `period` steps into `<model_dir>/checkpoints`,
  keeping the last `keep`; restores the latest for exact resume."""

  def __init__(self, model_dir: str, model_config: ModelConfig, period: int, keep: int):
    # Absolute: orbax's tensorstore writer refuses a relative path (e.g. xlalign demo's default
    # workdir/demo), and only when the first checkpoint is written.
    self.root = pathlib.Path(model_dir).absolute() / "checkpoints"
    self.period = period
    self.model_config = model_config
    self.manager = ocp.CheckpointManager(
        os.fspath(self.root), options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def should_save(self, step: int, last_step: int) -> bool:
    return step % self.period == 0 or step == last_step

  def save(self, step: int, params: Any, opt_state: Any, meta: dict,
           extra: Optional[Dict[str, Any]] = None) -> None:
    """`extra`: more pytrees saved as items of their own (PPO: the value model and its optimizer
    state), so `params` stays the model that `--checkpoint` commands read."""
    self.manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        opt_state=ocp.args.StandardSave(opt_state),
        meta=ocp.args.JsonSave(dict(meta, step=step)),
        model_config=ocp.args.JsonSave(self.model_config.to_dict()),
        **{name: ocp.args.StandardSave(tree) for name, tree in _extra_items(extra).items()}))

  def restore(self, step: int, abstract_params: Any, abstract_opt_state: Any,
              extra: Optional[Dict[str, Any]] = None) -> Tuple[Any, ...]:
    """(params, opt_state, meta); with `extra` ({name: abstract tree} of items saved with
    `extra`), a fourth element {name: restored tree}."""
    restored = self.manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract_params),
        opt_state=ocp.args.StandardRestore(abstract_opt_state),
        meta=ocp.args.JsonRestore(),
        **{name: ocp.args.StandardRestore(tree) for name, tree in _extra_items(extra).items()}))
    out = (restored.params, restored.opt_state, restored.meta)
    return out if extra is None else out + ({name: restored[name] for name in extra},)

  def wait(self) -> None:
    self.manager.wait_until_finished()


def save_params(out_dir: str, params: Any, model_config: ModelConfig, step: int = 0,
                meta: Optional[dict] = None) -> pathlib.Path:
  """A params-only checkpoint (converted or exported weights) at `<out_dir>/<step>`."""
  previous = pathlib.Path(out_dir) / str(step)
  if previous.exists() and fileio.is_primary():  # re-exporting (e.g. a new best) replaces it
    shutil.rmtree(previous)
  fileio.barrier(f"replace {previous}")  # multi-host: all save into the emptied directory
  manager = ocp.CheckpointManager(os.fspath(pathlib.Path(out_dir).absolute()),
                                  options=ocp.CheckpointManagerOptions(create=True))
  manager.save(step, args=ocp.args.Composite(
      params=ocp.args.StandardSave(params),
      meta=ocp.args.JsonSave(dict(meta or {}, step=step)),
      model_config=ocp.args.JsonSave(model_config.to_dict())), force=True)
  manager.wait_until_finished()
  manager.close()
  return pathlib.Path(out_dir) / str(step)
