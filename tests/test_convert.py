"""Import of T5X (legacy msgpack, tensorstore) and Hugging Face (safetensors, Flax msgpack) weights.

The shared legacy T5X checkpoint is a real one (google-research/t5x test data); the other layouts
are written here the way T5X and Hugging Face write them, then read back and compared exactly.
"""
import dataclasses
import functools
import json
import os

import numpy as np
import pytest
from flax import serialization, traverse_util

from xlalign_jax import convert
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError

LEGACY = "t5x/test_t5_tiny.checkpoint_0"

# Original-T5 flavour (plain ReLU MLP, logits through the embedding), uneven stacks: everything
# the shared gated/untied checkpoint does not exercise.
RELU_TIED = ModelConfig(vocab_size=40, emb_dim=6, num_heads=2, head_dim=4, num_encoder_layers=3,
                        num_decoder_layers=1, mlp_dim=10, mlp_activations=("relu",),
                        relative_attention_num_buckets=8, relative_attention_max_distance=20,
                        logits_via_embedding=True)


@functools.lru_cache(maxsize=None)
def _legacy(path: str):
  return convert.load_t5x(path)


def _random_params(config: ModelConfig, seed: int = 0):
  rng = np.random.default_rng(seed)
  flat = {name: rng.normal(size=shape).astype(np.float32)
          for name, shape in convert.expected_shapes(config).items()}
  return traverse_util.unflatten_dict(flat, sep="/")


@pytest.fixture(params=["legacy", "relu_tied"])
def model(request):
  """(params, config) of the real legacy checkpoint and of a synthetic original-T5 model."""
  if request.param == "legacy":
    return _legacy(str(request.getfixturevalue("shared_data") / LEGACY))
  return _random_params(RELU_TIED), RELU_TIED


def _flat(params):
  return traverse_util.flatten_dict(params, sep="/")


def _assert_same(params, expected):
  got, want = _flat(params), _flat(expected)
  assert sorted(got) == sorted(want)
  for name in want:
    assert got[name].dtype == np.float32, name
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def _raises(match: str):
  return pytest.raises(UserError, match=match)


# --------------------------------------------------------------------------------------------------
# T5X legacy msgpack (the shared real checkpoint)
# --------------------------------------------------------------------------------------------------


def test_legacy_checkpoint_names_shapes_and_config(shared_data):
  params, config = _legacy(str(shared_data / LEGACY))
  shapes = {name: v.shape for name, v in _flat(params).items()}
  want = {"token_embedder/embedding": (32128, 8), "decoder/logits_dense/kernel": (8, 32128),
          "encoder/encoder_norm/scale": (8,), "decoder/decoder_norm/scale": (8,)}
  for stack in ("encoder", "decoder"):
    want[f"{stack}/relpos_bias/rel_embedding"] = (4, 32)
    for i in range(2):
      layer = f"{stack}/layers_{i}"
      attentions = (["attention"] if stack == "encoder" else
                    ["self_attention", "encoder_decoder_attention"])
      norms = (["pre_attention_layer_norm"] if stack == "encoder" else
               ["pre_self_attention_layer_norm", "pre_cross_attention_layer_norm"])
      for norm in norms + ["pre_mlp_layer_norm"]:
        want[f"{layer}/{norm}/scale"] = (8,)
      for attention in attentions:
        for proj in ("query", "key", "value"):
          want[f"{layer}/{attention}/{proj}/kernel"] = (8, 12)
        want[f"{layer}/{attention}/out/kernel"] = (12, 8)
      want.update({f"{layer}/mlp/wi_0/kernel": (8, 16), f"{layer}/mlp/wi_1/kernel": (8, 16),
                   f"{layer}/mlp/wo/kernel": (16, 8)})
  assert shapes == want  # exactly these: the Adafactor state is not imported
  assert config == ModelConfig(vocab_size=32128, emb_dim=8, num_heads=4, head_dim=3,
                               num_encoder_layers=2, num_decoder_layers=2, mlp_dim=16,
                               mlp_activations=("gelu", "linear"),
                               relative_attention_num_buckets=32,
                               relative_attention_max_distance=128, logits_via_embedding=False)
  assert convert.expected_shapes(config) == want
  assert convert.param_count(params) == sum(int(np.prod(s)) for s in want.values())


def test_legacy_checkpoint_in_a_step_directory(shared_data, tmp_path):
  step_dir = tmp_path / "checkpoint_0"
  step_dir.mkdir()
  (step_dir / "checkpoint").write_bytes((shared_data / LEGACY).read_bytes())
  want = _legacy(str(shared_data / LEGACY))
  for path in (step_dir, step_dir / "checkpoint"):
    params, config = convert.load_t5x(str(path))
    _assert_same(params, want[0])
    assert config == want[1]
  with _raises("checkpoint_0"):  # the model dir: names the step dir to pass
    convert.load_t5x(str(tmp_path))


def _rewrite_legacy(shared_data, tmp_path, edit) -> str:
  contents = serialization.msgpack_restore((shared_data / LEGACY).read_bytes())
  edit(contents["optimizer"]["target"])
  path = tmp_path / "edited.checkpoint"
  path.write_bytes(serialization.msgpack_serialize(contents))
  return str(path)


def test_legacy_checkpoint_with_a_missing_parameter(shared_data, tmp_path):
  path = _rewrite_legacy(shared_data, tmp_path,
                         lambda t: t["decoder"]["layers_1"]["mlp"].pop("wo"))
  with _raises("missing parameter decoder/layers_1/mlp/wo/kernel"):
    convert.load_t5x(path)


def test_legacy_checkpoint_with_a_wrong_shape(shared_data, tmp_path):
  def edit(target):
    target["encoder"]["layers_1"]["mlp"]["wi_1"]["kernel"] = np.zeros((8, 15), np.float32)
  with _raises(r"encoder/layers_1/mlp/wi_1/kernel has shape \(8, 15\), expected \(8, 16\)"):
    convert.load_t5x(_rewrite_legacy(shared_data, tmp_path, edit))


def test_legacy_checkpoint_with_an_unexpected_parameter(shared_data, tmp_path):
  def edit(target):
    target["decoder"]["score_head"] = {"kernel": np.zeros((8, 1), np.float32)}
  with _raises("unexpected parameter decoder/score_head/kernel"):
    convert.load_t5x(_rewrite_legacy(shared_data, tmp_path, edit))


def test_t5x_bad_inputs(tmp_path):
  with _raises("checkpoint not found"):
    convert.load_t5x(str(tmp_path / "nope"))
  garbage = tmp_path / "garbage"
  garbage.write_bytes(b"\xc1 definitely not msgpack")
  with _raises("garbage is not a T5X checkpoint"):
    convert.load_t5x(str(garbage))
  other = tmp_path / "other.msgpack"
  other.write_bytes(serialization.msgpack_serialize({"version": 3, "weights": {}}))
  with _raises(r"no parameters found .*\['version', 'weights'\]"):
    convert.load_t5x(str(other))
  (tmp_path / "empty").mkdir()
  with _raises("no T5X 'checkpoint' file"):
    convert.load_t5x(str(tmp_path / "empty"))


# --------------------------------------------------------------------------------------------------
# T5X tensorstore layout
# --------------------------------------------------------------------------------------------------


def _write_tensorstore_checkpoint(step_dir, params, kvstore_driver="file"):
  """A T5X checkpoint dir as t5x's Checkpointer writes it: partitioned arrays as zarr stores
  named `target.<path with dots>`, their specs (relative paths) in the msgpack `checkpoint`
  file, unpartitioned ones (here the norm scales) inline; an Adafactor-like state beside."""
  import tensorstore as ts

  step_dir.mkdir(parents=True)

  def write(name, array):
    if name.endswith("/scale"):
      return array
    rel = "target." + name.replace("/", ".")
    metadata = {"compressor": {"id": "gzip"}, "shape": list(array.shape),
                "chunks": list(array.shape), "dtype": "<f4"}
    store = ts.open({"driver": "zarr", "kvstore": {"driver": "file",
                                                   "path": str(step_dir / rel)},
                     "metadata": metadata}, create=True).result()
    store.write(array).result()
    kvstore = {"driver": kvstore_driver, "path": rel}
    if kvstore_driver == "gcs":
      kvstore["bucket"] = "t5x-dummy-bucket"
    return {"driver": "zarr", "dtype": "float32", "kvstore": kvstore, "metadata": metadata}

  target = {name: write(name, np.asarray(v)) for name, v in _flat(params).items()}
  state = {"step": np.int32(5), "param_states": {
      name: {"v": np.zeros(np.shape(v)[:1], np.float32)} for name, v in _flat(params).items()}}
  contents = {"version": 3, "optimizer": {
      "target": traverse_util.unflatten_dict(target, sep="/"),
      "state": {"step": state["step"],
                "param_states": traverse_util.unflatten_dict(state["param_states"], sep="/")}}}
  (step_dir / "checkpoint").write_bytes(serialization.msgpack_serialize(contents))


@pytest.mark.parametrize("kvstore_driver", ["file", "gcs"])
def test_tensorstore_checkpoint_round_trip(model, tmp_path, kvstore_driver):
  params, config = model
  step_dir = tmp_path / "model" / "checkpoint_5"
  _write_tensorstore_checkpoint(step_dir, params, kvstore_driver)
  got, got_config = convert.load_t5x(str(step_dir))
  _assert_same(got, params)
  # T5X stores no max distance: the T5 default comes back.
  assert got_config == dataclasses.replace(config, relative_attention_max_distance=128)


def test_tensorstore_checkpoint_with_a_missing_array(tmp_path):
  import shutil

  step_dir = tmp_path / "checkpoint_5"
  _write_tensorstore_checkpoint(step_dir, _random_params(RELU_TIED))
  shutil.rmtree(step_dir / "target.decoder.layers_0.self_attention.value.kernel")
  with _raises("cannot read decoder/layers_0/self_attention/value/kernel"):
    convert.load_t5x(str(step_dir))


# --------------------------------------------------------------------------------------------------
# Hugging Face
# --------------------------------------------------------------------------------------------------


def _save_flax(params, config, out_dir, with_config=True):
  os.makedirs(out_dir, exist_ok=True)
  tree = convert.to_hf_flax_params(params, config)
  with open(os.path.join(out_dir, "flax_model.msgpack"), "wb") as f:
    f.write(serialization.msgpack_serialize(tree))
  if with_config:
    with open(os.path.join(out_dir, "config.json"), "w") as f:
      json.dump(convert.hf_config_dict(config), f)


def test_safetensors_round_trip(model, tmp_path):
  params, config = model
  convert.save_hf(params, config, str(tmp_path))
  got, got_config = convert.load_hf(str(tmp_path))
  _assert_same(got, params)
  assert got_config == config
  # Without config.json the same config is inferred from the arrays (but the max distance).
  (tmp_path / "config.json").unlink()
  got, got_config = convert.load_hf(str(tmp_path / "model.safetensors"))
  _assert_same(got, params)
  assert got_config == dataclasses.replace(config, relative_attention_max_distance=128)


def test_sharded_safetensors(tmp_path):
  from safetensors.numpy import save_file

  params = _random_params(RELU_TIED)
  state = convert.to_hf_state_dict(params, RELU_TIED)
  names = sorted(state)
  shards = {"model-00001-of-00002.safetensors": names[::2],
            "model-00002-of-00002.safetensors": names[1::2]}
  for shard, keys in shards.items():
    save_file({k: state[k] for k in keys}, str(tmp_path / shard))
  (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
      {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}))
  (tmp_path / "config.json").write_text(json.dumps(convert.hf_config_dict(RELU_TIED)))
  got, got_config = convert.load_hf(str(tmp_path))
  _assert_same(got, params)
  assert got_config == RELU_TIED


def test_flax_msgpack_round_trip(model, tmp_path):
  params, config = model
  tree = convert.to_hf_flax_params(params, config)
  # HF's Flax layout: kernels [in, out] as T5X, the relative position table [buckets, heads].
  block = tree["encoder"]["block"]["0"]["layer"]
  np.testing.assert_array_equal(block["0"]["SelfAttention"]["q"]["kernel"],
                                params["encoder"]["layers_0"]["attention"]["query"]["kernel"])
  np.testing.assert_array_equal(block["0"]["SelfAttention"]["relative_attention_bias"]["embedding"],
                                params["encoder"]["relpos_bias"]["rel_embedding"].T)
  assert "weight" in block["1"]["layer_norm"] and "embedding" in tree["shared"]
  assert ("lm_head" in tree) == (not config.logits_via_embedding)
  for with_config in (True, False):
    out = tmp_path / str(with_config)
    _save_flax(params, config, str(out), with_config)
    got, got_config = convert.load_hf(str(out))
    _assert_same(got, params)
    assert got_config == (config if with_config else
                          dataclasses.replace(config, relative_attention_max_distance=128))


def test_hf_bad_inputs(tmp_path):
  from safetensors.numpy import save_file

  params = _random_params(RELU_TIED)
  with _raises("checkpoint not found"):
    convert.load_hf(str(tmp_path / "nope"))
  (tmp_path / "pickled").mkdir()
  (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not read")
  with _raises("found pytorch_model.bin, which is not read"):
    convert.load_hf(str(tmp_path / "pickled"))
  bad = tmp_path / "bad.safetensors"
  bad.write_bytes(b"\x00" * 16)
  with _raises("bad.safetensors is not a safetensors file"):
    convert.load_hf(str(bad))

  def write(name, edit_state=None, edit_config=None):
    out = tmp_path / name
    convert.save_hf(params, RELU_TIED, str(out))
    state = convert.to_hf_state_dict(params, RELU_TIED)
    if edit_state:
      edit_state(state)
    save_file(state, str(out / "model.safetensors"))
    if edit_config:
      config = convert.hf_config_dict(RELU_TIED)
      edit_config(config)
      (out / "config.json").write_text(json.dumps(config))
    return str(out)

  with _raises("missing parameter encoder.block.2.layer.1.DenseReluDense.wo.weight"):
    convert.load_hf(write("missing", lambda s: s.pop(
        "encoder.block.2.layer.1.DenseReluDense.wo.weight")))
  with _raises("unexpected parameter encoder.block.0.layer.1.DenseReluDense.wi_0.weight"):
    convert.load_hf(write("extra", lambda s: s.update({
        "encoder.block.0.layer.1.DenseReluDense.wi_0.weight": np.zeros((10, 6), np.float32)})))
  # config.json and the arrays disagree: the first array that does not fit is named.
  with _raises(r"encoder.block.0.layer.1.DenseReluDense.wi.weight has shape \(10, 6\), "
               r"expected \(12, 6\)"):
    convert.load_hf(write("d_ff", edit_config=lambda c: c.update(d_ff=12)))
  with _raises("missing parameter encoder.block.3.layer.0.layer_norm.weight"):
    convert.load_hf(write("layers", edit_config=lambda c: c.update(num_layers=4)))
  with _raises("feed_forward_proj 'gelu' is not supported"):
    convert.load_hf(write("act", edit_config=lambda c: c.update(feed_forward_proj="gelu")))
  with _raises("missing d_model"):
    convert.load_hf(write("no_d_model", edit_config=lambda c: c.pop("d_model")))


def test_export_refuses_parameters_hf_lacks():
  params = _random_params(RELU_TIED)
  params["decoder"]["score_head"] = {"kernel": np.zeros((6, 1), np.float32)}
  with _raises("decoder/score_head/kernel has no Hugging Face T5 equivalent"):
    convert.to_hf_state_dict(params, RELU_TIED)
  with _raises("no Hugging Face T5 equivalent"):
    convert.hf_config_dict(dataclasses.replace(RELU_TIED, mlp_activations=("gelu", "relu")))


# --------------------------------------------------------------------------------------------------
# Against transformers' PyTorch T5 (optional: the [parity] extra)
# --------------------------------------------------------------------------------------------------


def test_pytorch_t5_accepts_the_mapping(model, tmp_path):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  params, config = model
  state = convert.to_hf_state_dict(params, config)
  hf_model = transformers.T5ForConditionalGeneration(
      transformers.T5Config(**convert.hf_config_dict(config)))
  result = hf_model.load_state_dict({k: torch.tensor(v) for k, v in state.items()},
                                    strict=True)
  assert not result.missing_keys and not result.unexpected_keys
  # transformers >= 5 ties lm_head to the embedding in __init__ whatever the config says, so a
  # separate head survives only through from_pretrained (which unties differing weights).
  convert.save_hf(params, config, str(tmp_path))
  hf_model = transformers.T5ForConditionalGeneration.from_pretrained(str(tmp_path))
  np.testing.assert_array_equal(hf_model.shared.weight.detach().numpy(),
                                params["token_embedder"]["embedding"])
  head = (params["token_embedder"]["embedding"] if config.logits_via_embedding else
          params["decoder"]["logits_dense"]["kernel"].T)
  np.testing.assert_array_equal(hf_model.lm_head.weight.detach().numpy(), head)


def test_reads_what_transformers_writes(model, tmp_path):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  _, config = model
  torch.manual_seed(0)
  hf_model = transformers.T5ForConditionalGeneration(
      transformers.T5Config(**convert.hf_config_dict(config)))
  hf_model.save_pretrained(str(tmp_path))  # transformers' own files, whatever its version
  params, got_config = convert.load_hf(str(tmp_path))
  assert got_config == config
  np.testing.assert_array_equal(params["token_embedder"]["embedding"],
                                hf_model.shared.weight.detach().numpy())
  np.testing.assert_array_equal(params["encoder"]["relpos_bias"]["rel_embedding"].T,
                                hf_model.encoder.block[0].layer[0].SelfAttention
                                .relative_attention_bias.weight.detach().numpy())
  if not config.logits_via_embedding:
    np.testing.assert_array_equal(params["decoder"]["logits_dense"]["kernel"].T,
                                  hf_model.lm_head.weight.detach().numpy())


def test_reads_a_separate_head_that_transformers_5_marks_tied(tmp_path):
  """MT5ForConditionalGeneration keeps lm_head apart from the embedding, yet transformers 5
  saves tie_word_embeddings true: the stored weights must decide."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  hf_config = transformers.MT5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=32, num_layers=1,
                                     num_heads=2, feed_forward_proj="gated-gelu",
                                     tie_word_embeddings=False)
  hf_model = transformers.MT5ForConditionalGeneration(hf_config)
  with torch.no_grad():  # make the head differ from the embedding, whatever __init__ tied
    hf_model.lm_head.weight = torch.nn.Parameter(torch.randn(40, 16))
  hf_model.save_pretrained(str(tmp_path))
  params, config = convert.load_hf(str(tmp_path))
  assert not config.logits_via_embedding
  np.testing.assert_array_equal(params["decoder"]["logits_dense"]["kernel"].T,
                                hf_model.lm_head.weight.detach().numpy())


def test_logits_match_pytorch_t5(model, tmp_path):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  import jax.numpy as jnp

  from xlalign_jax import network

  params, config = model
  convert.save_hf(params, config, str(tmp_path))
  hf_model = transformers.T5ForConditionalGeneration.from_pretrained(str(tmp_path)).eval()
  rng = np.random.default_rng(1)
  inputs = rng.integers(2, 30, size=(2, 9))
  inputs[0, 6:] = 0  # padding
  targets = rng.integers(2, 30, size=(2, 5))
  targets[1, 3:] = 0
  decoder_inputs = np.concatenate([np.zeros((2, 1), targets.dtype), targets[:, :-1]], axis=1)
  ours = network.Transformer(config).apply({"params": params}, jnp.asarray(inputs),
                                           jnp.asarray(decoder_inputs), jnp.asarray(targets))
  with torch.no_grad():
    theirs = hf_model(input_ids=torch.from_numpy(inputs),
                      attention_mask=torch.from_numpy(inputs > 0),
                      decoder_input_ids=torch.from_numpy(decoder_inputs)).logits.numpy()
  valid = targets > 0
  np.testing.assert_allclose(np.asarray(ours)[valid], theirs[valid], atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------------------------------
# xlalign convert
# --------------------------------------------------------------------------------------------------


def test_convert_command_writes_a_self_describing_checkpoint(shared_data, tmp_path, capsys):
  import jax

  from xlalign_jax import checkpoints, cli

  out = tmp_path / "converted"
  assert cli.main(["convert", "--from", "t5x", "--checkpoint", str(shared_data / LEGACY),
                   "--out", str(out)]) == 0
  assert "parameters: 518,240" in capsys.readouterr().out
  params, config = _legacy(str(shared_data / LEGACY))
  assert checkpoints.load_model_config(str(out)) == config
  abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  _assert_same(jax.tree_util.tree_map(np.asarray, checkpoints.restore_params(str(out), abstract)),
               params)
  # Bad input: one line naming the culprit, non-zero exit.
  assert cli.main(["convert", "--from", "hf", "--checkpoint", str(tmp_path / "nope"),
                   "--out", str(tmp_path / "o")]) == 2
  err = capsys.readouterr().err.strip()
  assert "\n" not in err and "nope" in err
  assert cli.main(["convert", "--from", "t5x", "--checkpoint", str(shared_data / LEGACY),
                   "--out", str(out)]) == 2
  assert "not empty" in capsys.readouterr().err
