"""Import T5X and Hugging Face T5 / mT5 weights into the network's parameter tree, and export back.

Readers (pure NumPy, never unpickling):
  * T5X legacy msgpack checkpoints (one file, or a `checkpoint_N/checkpoint` file) and the
    tensorstore-backed layout, where the msgpack holds zarr specs relative to the checkpoint dir;
  * Hugging Face `model.safetensors` (single or sharded with its index) and `flax_model.msgpack`.

One table (`_layout`) names every parameter in T5X and Hugging Face terms; it drives both
directions. Dimensions are inferred from the arrays (T5X stores no config), or read from
`config.json` and checked against them.
"""
import dataclasses
import json
import os
import re
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from flax import serialization, traverse_util

from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError

Params = Dict[str, dict]  # nested dict of arrays, T5X names (the flax params tree)

# --------------------------------------------------------------------------------------------------
# The one name table
# --------------------------------------------------------------------------------------------------

# How a parameter is stored. T5X kernels are [in, out]; PyTorch Linear weights are [out, in]; HF
# Flax kernels are [in, out]. T5X's relpos table is [heads, buckets], HF's is [buckets, heads].
DENSE, NORM, EMBED, RELPOS = "dense", "norm", "embed", "relpos"
_TORCH_TRANSPOSED = (DENSE, RELPOS)
_FLAX_TRANSPOSED = (RELPOS,)
_FLAX_LEAF = {DENSE: "kernel", NORM: "weight", EMBED: "embedding", RELPOS: "embedding"}


class Row(NamedTuple):
  t5x: str  # T5X name, "/"-separated
  hf: str  # Hugging Face module path, "."-separated, without the trailing ".weight"
  kind: str
  dims: Tuple[str, ...]  # symbolic shape in T5X layout, resolved by `_dim_sizes`


_EMBEDDING = Row("token_embedder/embedding", "shared", EMBED, ("vocab", "emb"))
_LM_HEAD = Row("decoder/logits_dense/kernel", "lm_head", DENSE, ("emb", "vocab"))
_ATTENTION = (("query", "q", ("emb", "inner")), ("key", "k", ("emb", "inner")),
              ("value", "v", ("emb", "inner")), ("out", "o", ("inner", "emb")))


def _layout(num_encoder_layers: int, num_decoder_layers: int, gated: bool,
            logits_via_embedding: bool) -> List[Row]:
  """Every parameter of the network, in T5X and Hugging Face (PyTorch) names."""
  mlp = ([("wi_0", ("emb", "mlp")), ("wi_1", ("emb", "mlp"))] if gated else
         [("wi", ("emb", "mlp"))]) + [("wo", ("mlp", "emb"))]
  # Per stack: (T5X attention name, HF attention name, T5X norm before it), then the MLP norm.
  stacks = {
      "encoder": ([("attention", "SelfAttention", "pre_attention_layer_norm")], "encoder_norm"),
      "decoder": ([("self_attention", "SelfAttention", "pre_self_attention_layer_norm"),
                   ("encoder_decoder_attention", "EncDecAttention",
                    "pre_cross_attention_layer_norm")], "decoder_norm"),
  }
  rows = [_EMBEDDING]
  for stack, num_layers in (("encoder", num_encoder_layers), ("decoder", num_decoder_layers)):
    attentions, final_norm = stacks[stack]
    # HF keeps the shared relative position table in block 0's self-attention.
    rows.append(Row(f"{stack}/relpos_bias/rel_embedding",
                    f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias", RELPOS,
                    ("heads", "buckets")))
    for i in range(num_layers):
      t5x, hf = f"{stack}/layers_{i}", f"{stack}.block.{i}.layer"
      for j, (t5x_attn, hf_attn, norm) in enumerate(attentions):
        rows.append(Row(f"{t5x}/{norm}/scale", f"{hf}.{j}.layer_norm", NORM, ("emb",)))
        rows += [Row(f"{t5x}/{t5x_attn}/{a}/kernel", f"{hf}.{j}.{hf_attn}.{b}", DENSE, dims)
                 for a, b, dims in _ATTENTION]
      j = len(attentions)
      rows.append(Row(f"{t5x}/pre_mlp_layer_norm/scale", f"{hf}.{j}.layer_norm", NORM, ("emb",)))
      rows += [Row(f"{t5x}/mlp/{w}/kernel", f"{hf}.{j}.DenseReluDense.{w}", DENSE, dims)
               for w, dims in mlp]
    rows.append(Row(f"{stack}/{final_norm}/scale", f"{stack}.final_layer_norm", NORM, ("emb",)))
  if not logits_via_embedding:
    rows.append(_LM_HEAD)
  return rows


def _layout_for(config: ModelConfig) -> List[Row]:
  return _layout(config.num_encoder_layers, config.num_decoder_layers,
                 len(config.mlp_activations) > 1, config.logits_via_embedding)


def _dim_sizes(config: ModelConfig) -> Dict[str, int]:
  return {"vocab": config.vocab_size, "emb": config.emb_dim, "heads": config.num_heads,
          "buckets": config.relative_attention_num_buckets, "mlp": config.mlp_dim,
          "inner": config.num_heads * config.head_dim}


def expected_shapes(config: ModelConfig) -> Dict[str, Tuple[int, ...]]:
  """T5X name -> shape of every parameter the network has under `config`."""
  sizes = _dim_sizes(config)
  return {row.t5x: tuple(sizes[d] for d in row.dims) for row in _layout_for(config)}


# --------------------------------------------------------------------------------------------------
# Formats: how a row is named and oriented in each kind of file
# --------------------------------------------------------------------------------------------------


class _Format(NamedTuple):
  name: Callable[[Row], str]  # the row's key in the file (flat, as error messages show it)
  transposed: Tuple[str, ...]  # kinds stored transposed relative to T5X


_T5X = _Format(lambda row: row.t5x, ())
_TORCH = _Format(lambda row: f"{row.hf}.weight", _TORCH_TRANSPOSED)
_HF_FLAX = _Format(lambda row: f"{row.hf.replace('.', '/')}/{_FLAX_LEAF[row.kind]}",
                   _FLAX_TRANSPOSED)


def _orient(array: np.ndarray, kind: str, fmt: _Format) -> np.ndarray:
  """T5X <-> `fmt` orientation (a transpose, so its own inverse)."""
  return np.ascontiguousarray(array.T) if kind in fmt.transposed else array


def _as_float32(name: str, value, source: str) -> np.ndarray:
  # Parameters are float32 in the network; bfloat16 (ml_dtypes, kind "V") widens exactly.
  if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiuV":
    raise UserError(f"{source}: {name} is not a numeric array ({type(value).__name__})")
  try:
    return np.asarray(value, np.float32)
  except (TypeError, ValueError):
    raise UserError(f"{source}: {name} has dtype {value.dtype}, not a number") from None


def _assemble(arrays: Dict[str, np.ndarray], rows: List[Row], fmt: _Format, source: str,
              ignored: Tuple[str, ...] = ()) -> Dict[str, np.ndarray]:
  """File arrays -> flat T5X dict; a missing or unexpected array is a UserError naming it."""
  flat = {}
  for row in rows:
    key = fmt.name(row)
    if key not in arrays:
      raise UserError(f"{source}: missing parameter {key}")
    flat[row.t5x] = _orient(_as_float32(key, arrays[key], source), row.kind, fmt)
  expected = {fmt.name(row) for row in rows}
  unexpected = sorted(k for k in arrays if k not in expected and k not in ignored)
  if unexpected:
    raise UserError(f"{source}: unexpected parameter {unexpected[0]}"
                    + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
                    + " for a T5 / mT5 encoder-decoder")
  return flat


def _check_shapes(flat: Dict[str, np.ndarray], config: ModelConfig, fmt: _Format,
                  source: str) -> None:
  sizes = _dim_sizes(config)
  for row in _layout_for(config):
    want = tuple(sizes[d] for d in row.dims)
    if row.kind in fmt.transposed:
      want = want[::-1]
    got = _orient(flat[row.t5x], row.kind, fmt).shape
    if got != want:
      raise UserError(f"{source}: {fmt.name(row)} has shape {got}, expected {want} "
                      f"for {_describe(config)}")


def _describe(config: ModelConfig) -> str:
  return (f"vocab {config.vocab_size}, d_model {config.emb_dim}, {config.num_heads} heads x "
          f"{config.head_dim}, mlp {config.mlp_dim}, {config.num_encoder_layers}+"
          f"{config.num_decoder_layers} layers")


def _infer_config(flat: Dict[str, np.ndarray], num_encoder_layers: int, num_decoder_layers: int,
                  gated: bool, logits_via_embedding: bool, fmt: _Format,
                  source: str) -> ModelConfig:
  """Dimensions from the arrays of a flat T5X dict (T5X stores no model config)."""
  rows = {row.t5x: row for row in _layout(num_encoder_layers, num_decoder_layers, gated,
                                          logits_via_embedding)}

  def shape(name: str, ndim: int) -> Tuple[int, ...]:
    got = flat[name].shape
    if len(got) != ndim:
      raise UserError(f"{source}: {fmt.name(rows[name])} has {len(got)} dimensions, "
                      f"expected {ndim}")
    return got

  vocab, emb = shape("token_embedder/embedding", 2)
  heads, buckets = shape("encoder/relpos_bias/rel_embedding", 2)
  query = ("encoder/layers_0/attention/query/kernel" if num_encoder_layers else
           "decoder/layers_0/self_attention/query/kernel")
  if query not in flat:
    raise UserError(f"{source}: no encoder or decoder layers found")
  inner = shape(query, 2)[1]
  if inner % heads:
    raise UserError(f"{source}: {fmt.name(rows[query])} has {inner} columns, not a multiple of "
                    f"{heads} heads (from the relative position table)")
  wi = query.split("/")[0] + "/layers_0/mlp/" + ("wi_0" if gated else "wi") + "/kernel"
  return ModelConfig(
      vocab_size=vocab, emb_dim=emb, num_heads=heads, head_dim=inner // heads,
      num_encoder_layers=num_encoder_layers, num_decoder_layers=num_decoder_layers,
      mlp_dim=shape(wi, 2)[1],
      # T5 v1.1 / mT5 gate a GELU; the original T5 has a plain ReLU MLP.
      mlp_activations=("gelu", "linear") if gated else ("relu",),
      dropout_rate=0.0, relative_attention_num_buckets=buckets,
      relative_attention_max_distance=128,  # not stored in the weights; every T5 / mT5 uses 128
      logits_via_embedding=logits_via_embedding)


def _count_layers(keys, pattern: str) -> int:
  """1 + the largest layer index matched by `pattern` (group 1), 0 if none."""
  found = [int(m.group(1)) for m in map(re.compile(pattern).match, keys) if m]
  return max(found) + 1 if found else 0


def _unflatten(flat: Dict[str, np.ndarray]) -> Params:
  return traverse_util.unflatten_dict(flat, sep="/")


def _flatten(params: Params) -> Dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def _read_bytes(path: str) -> bytes:
  if not os.path.exists(path):
    raise UserError(f"checkpoint not found: {path}")
  with open(path, "rb") as f:
    return f.read()


def _msgpack(path: str, what: str) -> dict:
  raw = _read_bytes(path)
  if raw.startswith(b"model_checkpoint_path"):
    raise UserError(f"{path} is a TensorFlow checkpoint index, not a {what}")
  try:
    contents = serialization.msgpack_restore(raw)
  except Exception as exc:  # msgpack raises several unrelated types on garbage
    raise UserError(f"{path} is not a {what} (msgpack: {type(exc).__name__})") from None
  if not isinstance(contents, dict):
    raise UserError(f"{path} is not a {what} (top level is {type(contents).__name__})")
  return contents


# --------------------------------------------------------------------------------------------------
# T5X
# --------------------------------------------------------------------------------------------------

_T5X_FILE = "checkpoint"


def _t5x_checkpoint_file(path: str) -> str:
  if not os.path.exists(path):
    raise UserError(f"checkpoint not found: {path}")
  if not os.path.isdir(path):
    return path
  if os.path.isfile(os.path.join(path, _T5X_FILE)):
    return os.path.join(path, _T5X_FILE)
  steps = sorted((int(m.group(1)), name) for name in os.listdir(path)
                 if (m := re.fullmatch(r"checkpoint_(\d+)", name)))
  hint = (f"; pass one of its step directories, e.g. {os.path.join(path, steps[-1][1])}"
          if steps else "")
  raise UserError(f"no T5X '{_T5X_FILE}' file in {path}{hint}")


def _is_ts_spec(value) -> bool:
  return isinstance(value, dict) and isinstance(value.get("driver"), str) and "kvstore" in value


def _read_tensorstore(spec: dict, ckpt_dir: str, name: str, source: str) -> np.ndarray:
  """Read one array that T5X wrote with tensorstore; its spec holds a path relative to the dir."""
  import tensorstore as ts  # only this layout needs it

  kvstore = spec["kvstore"]
  # tensorstore < 0.1.14 kept the path beside kvstore; gcs/gfile specs are read from local files.
  rel = kvstore.get("path", spec.get("path")) if isinstance(kvstore, dict) else None
  if not isinstance(rel, str):
    raise UserError(f"{source}: {name} has a tensorstore spec without a path: {spec}")
  driver = kvstore.get("driver")
  if driver not in ("file", "gfile", "gcs"):
    raise UserError(f"{source}: {name} uses tensorstore kvstore driver {driver!r} "
                    "(supported: file, gfile, gcs read from local disk)")
  location = os.path.join(ckpt_dir, rel)
  try:
    store = ts.open({"driver": spec["driver"], "kvstore": {"driver": "file", "path": location}},
                    open=True, read=True).result()
    return np.asarray(store.read().result())
  except Exception as exc:  # tensorstore reports every failure as ValueError / RuntimeError
    raise UserError(f"{source}: cannot read {name} from {location}: "
                    f"{' '.join(str(exc).split())[:200]}") from None


def _t5x_target(contents: dict, source: str) -> dict:
  """The parameter tree inside a T5X state dict (optimizer state is ignored)."""
  for keys in (("optimizer", "target"), ("target",), ("params",)):
    node = contents
    for key in keys:
      node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
      return node
  if "token_embedder" in contents:  # a bare parameter tree
    return contents
  raise UserError(f"{source}: no parameters found (expected optimizer/target; top-level keys: "
                  f"{sorted(contents)})")


def load_t5x(path: str) -> Tuple[Params, ModelConfig]:
  """Parameters and inferred config of a T5X checkpoint (legacy msgpack or tensorstore-backed)."""
  ckpt_file = _t5x_checkpoint_file(path)
  ckpt_dir = os.path.dirname(os.path.abspath(ckpt_file))
  target = _t5x_target(_msgpack(ckpt_file, "T5X checkpoint"), ckpt_file)
  leaves = traverse_util.flatten_dict(target, sep="/", is_leaf=lambda _, v: _is_ts_spec(v))
  arrays = {name: _read_tensorstore(v, ckpt_dir, name, ckpt_file) if _is_ts_spec(v) else v
            for name, v in leaves.items()}
  keys = list(arrays)
  if any(k.startswith(("encoder/layers/", "decoder/layers/")) for k in keys):
    raise UserError(f"{ckpt_file}: scanned-layer checkpoints (encoder/layers/...) are not "
                    "supported; export with unscanned layers")
  structure = (_count_layers(keys, r"encoder/layers_(\d+)/"),
               _count_layers(keys, r"decoder/layers_(\d+)/"),
               any("/mlp/wi_0/" in k for k in keys),
               "decoder/logits_dense/kernel" not in arrays)
  flat = _assemble(arrays, _layout(*structure), _T5X, ckpt_file)
  config = _infer_config(flat, *structure, _T5X, ckpt_file)
  _check_shapes(flat, config, _T5X, ckpt_file)
  return _unflatten(flat), config


# --------------------------------------------------------------------------------------------------
# Hugging Face
# --------------------------------------------------------------------------------------------------

_SAFETENSORS, _SAFETENSORS_INDEX, _FLAX_MSGPACK = (
    "model.safetensors", "model.safetensors.index.json", "flax_model.msgpack")
# PyTorch names of the tied input embedding besides `shared.weight`.
_EMBED_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
# A table old HF T5 checkpoints carry but never use.
_UNUSED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)


def _hf_files(path: str) -> Tuple[str, Optional[str]]:
  """(weights file, config.json or None) of a HF model directory or weights file."""
  if not os.path.exists(path):
    raise UserError(f"checkpoint not found: {path}")
  if os.path.isdir(path):
    for name in (_SAFETENSORS, _SAFETENSORS_INDEX, _FLAX_MSGPACK):
      if os.path.isfile(os.path.join(path, name)):
        weights = os.path.join(path, name)
        break
    else:
      extra = (" (found pytorch_model.bin, which is not read: pickles are never loaded; "
               "re-save the model with safetensors)"
               if os.path.exists(os.path.join(path, "pytorch_model.bin")) else "")
      raise UserError(f"no {_SAFETENSORS}, {_SAFETENSORS_INDEX} or {_FLAX_MSGPACK} in "
                      f"{path}{extra}")
  else:
    weights = path
  config = os.path.join(os.path.dirname(os.path.abspath(weights)), "config.json")
  return weights, config if os.path.isfile(config) else None


def _read_safetensors(path: str) -> Dict[str, np.ndarray]:
  from safetensors.numpy import load_file  # only HF imports need it

  try:
    return load_file(path)
  except Exception as exc:  # safetensors raises SafetensorError / OSError on bad files
    raise UserError(f"{path} is not a safetensors file ({' '.join(str(exc).split())[:150]})"
                    ) from None


def _read_hf_arrays(weights: str) -> Tuple[Dict[str, np.ndarray], _Format]:
  if weights.endswith(".msgpack"):
    tree = _msgpack(weights, "Hugging Face Flax checkpoint")
    if set(tree) == {"params"}:
      tree = tree["params"]
    return traverse_util.flatten_dict(tree, sep="/"), _HF_FLAX
  if weights.endswith(".index.json"):
    try:
      with open(weights) as f:
        weight_map = json.load(f)["weight_map"]
    except (ValueError, KeyError, TypeError):
      raise UserError(f"{weights} is not a safetensors index (no weight_map)") from None
    arrays = {}
    for shard in sorted(set(weight_map.values())):
      arrays.update(_read_safetensors(os.path.join(os.path.dirname(weights), shard)))
    return arrays, _TORCH
  if weights.endswith(".safetensors"):
    return _read_safetensors(weights), _TORCH
  raise UserError(f"{weights}: not a Hugging Face weights file (expected *.safetensors, "
                  f"{_SAFETENSORS_INDEX} or *.msgpack; pickled .bin files are never loaded)")


def _hf_activations(feed_forward_proj: str, source: str) -> Tuple[str, ...]:
  gated = feed_forward_proj.startswith("gated-")
  act = feed_forward_proj[len("gated-"):] if gated else feed_forward_proj
  # HF's "gated-gelu" means gelu_new (tanh), as does our "gelu"; HF's bare "gelu" is exact erf.
  act = "gelu_new" if gated and act == "gelu" else act
  ours = {"gelu_new": "gelu", "relu": "relu"}.get(act)
  if ours is None:
    raise UserError(f"{source}: feed_forward_proj {feed_forward_proj!r} is not supported "
                    "(gated-gelu, relu, gated-relu or gelu_new)")
  return (ours, "linear") if gated else (ours,)


def _config_from_hf_json(path: str) -> ModelConfig:
  try:
    with open(path) as f:
      d = json.load(f)
  except ValueError:
    raise UserError(f"{path} is not valid JSON") from None
  if not isinstance(d, dict) or not isinstance(d.get("feed_forward_proj", ""), str):
    raise UserError(f"{path} is not a T5 config.json")

  def get(key, default=None):
    value = d.get(key, default)
    if value is None:
      raise UserError(f"{path}: missing {key}")
    return value

  num_layers = get("num_layers")
  return ModelConfig(
      vocab_size=get("vocab_size"), emb_dim=get("d_model"), num_heads=get("num_heads"),
      head_dim=get("d_kv"), num_encoder_layers=num_layers,
      num_decoder_layers=get("num_decoder_layers", num_layers), mlp_dim=get("d_ff"),
      mlp_activations=_hf_activations(get("feed_forward_proj", "relu"), path),
      dropout_rate=0.0,
      relative_attention_num_buckets=get("relative_attention_num_buckets", 32),
      relative_attention_max_distance=get("relative_attention_max_distance", 128),
      # Logits through the embedding scaled by d_model**-0.5 (original T5) or a separate head
      # (mT5). transformers >= 5 always writes tie_word_embeddings true and says which in
      # scale_decoder_outputs; older configs say it with tie_word_embeddings (default true).
      logits_via_embedding=bool(d.get("scale_decoder_outputs", d.get("tie_word_embeddings", True))))


def _torch_aliases(arrays: Dict[str, np.ndarray], config: Optional[ModelConfig]
                   ) -> Dict[str, np.ndarray]:
  """Fill tied names a PyTorch checkpoint stored only once, under another name."""
  arrays = dict(arrays)
  if "shared.weight" not in arrays:
    alias = next((k for k in _EMBED_ALIASES if k in arrays), None)
    if alias:
      arrays["shared.weight"] = arrays[alias]
  # transformers >= 5 ties lm_head to the embedding at init and saves an unscaled tied head once.
  if (config is not None and not config.logits_via_embedding and "lm_head.weight" not in arrays
      and "shared.weight" in arrays):
    arrays["lm_head.weight"] = arrays["shared.weight"]
  return arrays


def _separate_lm_head(arrays: Dict[str, np.ndarray], fmt: _Format) -> bool:
  """Whether the file holds an lm_head that is not just a copy of the embedding."""
  head, embedding = arrays.get(fmt.name(_LM_HEAD)), arrays.get(fmt.name(_EMBEDDING))
  if head is None:
    return False
  return embedding is None or not np.array_equal(_orient(head, DENSE, fmt).T, embedding)


def load_hf(path: str) -> Tuple[Params, ModelConfig]:
  """Parameters and config of a Hugging Face T5 / mT5 checkpoint (safetensors or Flax msgpack).

  `config.json` beside the weights gives the config, checked against every array's shape;
  without it the dimensions are inferred from the arrays, and the logits count as tied (scaled
  embedding, original T5) unless an `lm_head` different from the embedding is stored.
  """
  weights, config_json = _hf_files(path)
  arrays, fmt = _read_hf_arrays(weights)
  config = _config_from_hf_json(config_json) if config_json else None
  if config and config.logits_via_embedding and _separate_lm_head(arrays, fmt):
    # The weights overrule the config: transformers 5 writes tie_word_embeddings true for an
    # MT5ForConditionalGeneration (separate head) without saying scale_decoder_outputs false.
    config = dataclasses.replace(config, logits_via_embedding=False)
  if fmt is _TORCH:
    arrays = _torch_aliases(arrays, config)
  keys = [k.replace("/", ".") for k in arrays]
  if config:
    rows = _layout_for(config)
  else:
    structure = (_count_layers(keys, r"encoder\.block\.(\d+)\."),
                 _count_layers(keys, r"decoder\.block\.(\d+)\."),
                 any(".DenseReluDense.wi_0." in k for k in keys),
                 not _separate_lm_head(arrays, fmt))
    rows = _layout(*structure)
  ignored = _EMBED_ALIASES + _UNUSED if fmt is _TORCH else ()
  if _LM_HEAD not in rows:  # logits via the embedding: a stored lm_head is an alias of it
    ignored += (fmt.name(_LM_HEAD),)
  flat = _assemble(arrays, rows, fmt, weights, ignored)
  if not config:
    config = _infer_config(flat, *structure, fmt, weights)
  _check_shapes(flat, config, fmt, weights)
  return _unflatten(flat), config


# --------------------------------------------------------------------------------------------------
# Export to Hugging Face (for parity tests and benchmarks against PyTorch)
# --------------------------------------------------------------------------------------------------


def _export(params: Params, config: ModelConfig, fmt: _Format) -> Dict[str, np.ndarray]:
  flat = _flatten(params)
  rows = _layout_for(config)
  missing = [row.t5x for row in rows if row.t5x not in flat]
  if missing:
    raise UserError(f"parameter {missing[0]} is missing from the tree")
  extra = sorted(set(flat) - {row.t5x for row in rows})
  if extra:
    raise UserError(f"parameter {extra[0]} has no Hugging Face T5 equivalent")
  _check_shapes(flat, config, _T5X, "parameters")
  return {fmt.name(row): _orient(np.asarray(flat[row.t5x], np.float32), row.kind, fmt)
          for row in rows}


def to_hf_state_dict(params: Params, config: ModelConfig) -> Dict[str, np.ndarray]:
  """PyTorch `T5ForConditionalGeneration` state dict (NumPy arrays), loadable with strict=True."""
  state = _export(params, config, _TORCH)
  # PyTorch lists the tied embedding under every module that holds it.
  for alias in _EMBED_ALIASES:
    state[alias] = state["shared.weight"]
  if config.logits_via_embedding:
    state["lm_head.weight"] = state["shared.weight"]
  return state


def to_hf_flax_params(params: Params, config: ModelConfig) -> Params:
  """The params tree of HF's `FlaxT5ForConditionalGeneration` (what `flax_model.msgpack` holds)."""
  return traverse_util.unflatten_dict(_export(params, config, _HF_FLAX), sep="/")


def _hf_feed_forward_proj(activations: Tuple[str, ...]) -> str:
  acts = tuple(activations)
  if acts == ("gelu", "linear"):
    return "gated-gelu"  # HF spells the tanh GELU this way when gated
  if len(acts) == 2 and acts[1] == "linear" and acts[0] == "relu":
    return "gated-relu"
  if acts == ("relu",):
    return "relu"
  if acts == ("gelu",):
    return "gelu_new"
  raise UserError(f"mlp_activations {acts} have no Hugging Face T5 equivalent")


def hf_config_dict(config: ModelConfig) -> dict:
  """`config.json` for transformers' T5ForConditionalGeneration with the same architecture."""
  return {
      "architectures": ["T5ForConditionalGeneration"],
      "model_type": "t5",
      "vocab_size": config.vocab_size,
      "d_model": config.emb_dim,
      "d_kv": config.head_dim,
      "d_ff": config.mlp_dim,
      "num_heads": config.num_heads,
      "num_layers": config.num_encoder_layers,
      "num_decoder_layers": config.num_decoder_layers,
      "feed_forward_proj": _hf_feed_forward_proj(config.mlp_activations),
      "relative_attention_num_buckets": config.relative_attention_num_buckets,
      "relative_attention_max_distance": config.relative_attention_max_distance,
      "tie_word_embeddings": config.logits_via_embedding,
      "dropout_rate": 0.0,
      "layer_norm_epsilon": 1e-6,
      "initializer_factor": 1.0,
      "is_encoder_decoder": True,
      "pad_token_id": 0,
      "eos_token_id": 1,
      "decoder_start_token_id": 0,
  }


def save_hf(params: Params, config: ModelConfig, out_dir: str) -> None:
  """Write `model.safetensors` + `config.json`, loadable with `T5ForConditionalGeneration.
  from_pretrained(out_dir)` (which, unlike `load_state_dict`, unties a separate lm_head)."""
  from safetensors.numpy import save_file

  os.makedirs(out_dir, exist_ok=True)
  save_file(to_hf_state_dict(params, config), os.path.join(out_dir, _SAFETENSORS),
            metadata={"format": "pt"})
  with open(os.path.join(out_dir, "config.json"), "w") as f:
    json.dump(hf_config_dict(config), f, indent=2, sort_keys=True)


def param_count(params: Params) -> int:
  return sum(int(np.prod(np.shape(v))) for v in _flatten(params).values())
