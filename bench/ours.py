"""Our side of bench/run.py: the converted weights on a data-parallel mesh of the process's devices
(one, unless XLALIGN_CPU_DEVICES says otherwise), the sampler, the train steps, best-of-n, the
matmul peak and XLA's FLOP counts."""
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench import flops
from bench.sft_step import make_stepper
from xlalign_jax import convert, decoding, partitioning, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.trainers import reward as reward_trainer
from xlalign_jax.trainers.sft import lm_loss_fn

_ARCH_FIELDS = ("vocab_size", "emb_dim", "num_heads", "head_dim", "num_encoder_layers",
                "num_decoder_layers", "mlp_dim", "mlp_activations", "logits_via_embedding",
                "relative_attention_num_buckets", "relative_attention_max_distance")


def load_converted(hf_dir: str, expected: ModelConfig):
  """The Hugging Face save converted by the repo's importer (`xlalign convert --from hf`)."""
  params, config = convert.load_hf(hf_dir)
  diff = {f: (getattr(config, f), getattr(expected, f)) for f in _ARCH_FIELDS
          if tuple(np.atleast_1d(getattr(config, f))) != tuple(np.atleast_1d(getattr(expected, f)))}
  if diff:
    raise SystemExit(f"converted config differs from the gin config: {diff}")
  return params


def rm_params(params: dict, config: ModelConfig, seed: int = 0) -> dict:
  """The LM's backbone with a random scalar head instead of the logits layer."""
  decoder = {k: v for k, v in params["decoder"].items() if k != "logits_dense"}
  head = np.random.default_rng(seed).normal(0, config.emb_dim ** -0.5, (config.emb_dim, 1))
  decoder["score_head"] = {"kernel": head.astype(np.float32)}
  return {**params, "decoder": decoder}


def pairwise_batch(config: ModelConfig, batch: int, inputs: int, targets: int,
                   seed: int = 1) -> dict:
  """Random prompts with a chosen and a rejected response each (no padding)."""
  rng = np.random.default_rng(seed)
  out = {"encoder_input_tokens": rng.integers(2, config.vocab_size, (batch, inputs))}
  for side in ("chosen", "rejected"):
    tgt = rng.integers(2, config.vocab_size, (batch, targets))
    out[f"{side}_decoder_target_tokens"] = tgt
    out[f"{side}_decoder_input_tokens"] = np.concatenate([np.zeros_like(tgt[:, :1]),
                                                          tgt[:, :-1]], 1)
  return {k: v.astype(np.int32) for k, v in out.items()}


class Ours:
  """One config's models on a data-parallel mesh of all the process's devices."""

  def __init__(self, config: ModelConfig, params: dict):
    mesh_config = partitioning.MeshConfig()
    self.mesh, self.rules = partitioning.create_mesh(mesh_config), mesh_config.logical_axis_rules
    self.config, self.host_params = config, params
    self.lm = training.build_model(config)
    self.rm = training.build_model(config, score_head=True)
    self._sampler = None
    self._rm_source = self._rm_placed = self._reward_fn = None

  def _placed(self, model, params):
    _, shardings = training.abstract_params(model, self.mesh, self.rules)
    return jax.device_put(params, shardings), shardings

  def _abstract(self, model):
    return training.abstract_params(model, self.mesh, self.rules)[0]

  def logits(self, enc, dec_in, dec_tgt) -> np.ndarray:
    with partitioning.activate(self.mesh, self.rules):
      return np.asarray(jax.jit(self.lm.apply)({"params": self.host_params}, enc, dec_in, dec_tgt))

  def rewards(self, rm_host_params, enc, dec_in, dec_tgt) -> np.ndarray:
    """The RM's reward per row; parameters placed and the function jitted once, then reused."""
    if self._rm_source is not rm_host_params:
      self._rm_source, self._rm_placed = rm_host_params, self._placed(self.rm, rm_host_params)[0]
    if self._reward_fn is None:
      self._reward_fn = jax.jit(functools.partial(reward_trainer.rewards, self.rm))
    with partitioning.activate(self.mesh, self.rules):
      return np.asarray(self._reward_fn(self._rm_placed, enc, dec_in, dec_tgt))

  def sampler(self) -> decoding.Sampler:
    if self._sampler is None:
      params, shardings = self._placed(self.lm, self.host_params)
      self._sampler = decoding.Sampler(self.lm, params, self.mesh, self.rules, shardings)
    return self._sampler

  def drop_sampler(self) -> None:
    """Free the sampler's copy of the parameters (1.2 GB at mt5_small) before training."""
    self._sampler = self._rm_source = self._rm_placed = self._reward_fn = None

  def sample(self, enc: np.ndarray, n: int, new_tokens: int, seed: int):
    """(decoded positions = rows x steps run, rows that emitted EOS, tokens [B, n, L])."""
    out = self.sampler()(enc, jax.random.PRNGKey(seed), decoding.SamplingConfig(n, new_tokens))
    tokens = np.asarray(jax.device_get(out.tokens))
    lengths = np.asarray(out.lengths)
    steps = int(lengths.max())  # the loop runs until every row has stopped
    return lengths.size * steps, int((tokens == decoding.EOS_ID).any(-1).sum()), tokens

  def sft_stepper(self, batch: dict):
    return make_stepper(self.lm, lm_loss_fn(self.lm), batch, self.mesh, self.rules,
                        self.host_params)[0]

  def rm_stepper(self, rm_host_params: dict, batch: dict):
    return make_stepper(self.rm, reward_trainer.pairwise_loss_fn(self.rm), batch, self.mesh,
                        self.rules, rm_host_params)[0]

  def best_of_n(self, rm_host_params: dict, enc: np.ndarray, n: int, new_tokens: int, seed: int):
    """Sample n per prompt, score all B * n candidates with the RM (one encoder pass per prompt,
    candidates grouped n per row as in sampling), keep the argmax. Returns the chosen indices."""
    _, _, tokens = self.sample(enc, n, new_tokens, seed)
    targets = tokens.reshape(-1, tokens.shape[-1])
    dec_in = np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], 1)
    r = self.rewards(rm_host_params, enc, dec_in, targets)
    return r.reshape(enc.shape[0], n).argmax(-1)

  def xla_flops(self, batch: int, enc_len: int, dec_len: int, sample_batch: int, n: int,
                sample_enc_len: int, cache_len: int) -> dict:
    """XLA's cost_analysis FLOPs of: the LM forward, its gradient (forward + backward), the RM's
    pairwise gradient, and one KV-cache decode step; beside the analytic counts."""
    c = self.config
    out = {}
    i32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.int32)
    lm_batch_ = {"encoder_input_tokens": i32(batch, enc_len),
                 "decoder_input_tokens": i32(batch, dec_len),
                 "decoder_target_tokens": i32(batch, dec_len),
                 "decoder_loss_weights": jax.ShapeDtypeStruct((batch, dec_len), jnp.float32)}
    rm_batch_ = {"encoder_input_tokens": i32(batch, enc_len),
                 **{f"{side}_decoder_{k}_tokens": i32(batch, dec_len)
                    for side in ("chosen", "rejected") for k in ("input", "target")}}

    def grad_of(loss_fn):
      # The train steps' own losses: a trivial loss (a plain sum) lets XLA skip backward matmuls.
      return lambda p, b: jax.grad(lambda q: loss_fn(q, b, None)[0])(p)

    def lm_fwd(p, b):
      return self.lm.apply({"params": p}, b["encoder_input_tokens"], b["decoder_input_tokens"],
                           b["decoder_target_tokens"])

    cases = {
        "forward": (lm_fwd, (self._abstract(self.lm), lm_batch_),
                    flops.forward(c, batch, enc_len, dec_len)),
        "sft_fwd_bwd": (grad_of(lm_loss_fn(self.lm)), (self._abstract(self.lm), lm_batch_),
                        flops.train_step(c, batch, enc_len, dec_len)),
        "rm_fwd_bwd": (grad_of(reward_trainer.pairwise_loss_fn(self.rm)),
                       (self._abstract(self.rm), rm_batch_),
                       flops.train_step(c, batch, enc_len, dec_len, 2, score_head=True)),
    }
    step_fn, step_args = self._decode_step(sample_batch, n, cache_len, sample_enc_len)
    cases["decode_step"] = (step_fn, step_args,
                            flops.decode_step(c, sample_batch * n, cache_len, sample_enc_len))
    for name, (fn, args, analytic) in cases.items():
      with partitioning.activate(self.mesh, self.rules):
        xla = flops.xla_flops(jax.jit(fn).lower(*args).compile())
      if xla:  # cost_analysis counts one device's share of the data-parallel program
        xla *= self.mesh.size
      out[name] = {"analytic": analytic, "xla": xla,
                   "xla_over_analytic": xla / analytic if xla else None}
    return out

  def _decode_step(self, batch: int, n: int, cache_len: int, enc_len: int):
    """One sampling step (all B * n rows, cache of `cache_len`) and abstract arguments."""
    c, lm, rows = self.config, self.lm, batch * n
    params = self._abstract(lm)
    enc_tokens = jax.ShapeDtypeStruct((batch, enc_len), jnp.int32)
    encoded = jax.ShapeDtypeStruct((batch, enc_len, c.emb_dim), jnp.float32)
    with partitioning.activate(self.mesh, self.rules):
      cache = jax.eval_shape(functools.partial(decoding.init_cache, lm, batch_rows=rows,
                                               max_length=cache_len), params, encoded, enc_tokens)

    def step(p, cache, encoded, enc_tokens, prev):
      ones = jnp.ones((rows, 1), jnp.int32)
      return lm.apply({"params": p, "cache": cache}, encoded, enc_tokens, prev, ones, decode=True,
                      decode_position=jnp.int32(cache_len - 1), mutable=["cache"],
                      method=lm.decode)
    return step, (params, cache, encoded, enc_tokens, jax.ShapeDtypeStruct((rows, 1), jnp.int32))


def peak_matmul(size: int, repeats: int) -> float:
  """Median float32 GFLOP/s of a jitted size x size matmul."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, b).block_until_ready()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    dot(a, b).block_until_ready()
    times.append(time.perf_counter() - t0)
  return 2 * size ** 3 / statistics.median(times) / 1e9
