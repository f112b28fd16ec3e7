"""The peer: Hugging Face transformers' PyTorch T5, at the dimensions and weights of ours.

Imported by bench/run.py only; the package itself never imports torch or transformers.
"""
import os
import time

import numpy as np

try:
  import torch
  import transformers
  from transformers import T5Config, T5ForConditionalGeneration
  from transformers.optimization import Adafactor
except ImportError as exc:
  raise SystemExit(f"bench needs the peer dependencies ({exc.name} missing): "
                   "pip install -e '.[bench]'") from None

from xlalign_jax.config import ModelConfig

EOS_ID = 1


def set_threads() -> dict:
  """Intra-op threads = all cores (torch's default may differ); recorded in results.json."""
  torch.set_num_threads(os.cpu_count())
  transformers.utils.logging.disable_progress_bar()  # keep the progress lines readable
  return {"torch_num_threads": torch.get_num_threads(),
          "torch_num_interop_threads": torch.get_num_interop_threads()}


def versions() -> dict:
  return {"torch": torch.__version__, "transformers": transformers.__version__}


def hf_config(c: ModelConfig) -> "T5Config":
  """T5 v1.1 / mT5 architecture. T5Config rather than MT5Config: transformers 5 forces
  tie_word_embeddings on both and writes it as true; only T5Config records in config.json
  (scale_decoder_outputs: false) that the untied mT5 head is not scaled, which the converter
  reads. The modelling code of the two classes is the same."""
  assert tuple(c.mlp_activations) == ("gelu", "linear"), "bench covers mT5 (gated GELU) only"
  return T5Config(vocab_size=c.vocab_size, d_model=c.emb_dim, d_kv=c.head_dim, d_ff=c.mlp_dim,
                  num_layers=c.num_encoder_layers, num_decoder_layers=c.num_decoder_layers,
                  num_heads=c.num_heads, feed_forward_proj="gated-gelu",
                  relative_attention_num_buckets=c.relative_attention_num_buckets,
                  relative_attention_max_distance=c.relative_attention_max_distance,
                  tie_word_embeddings=False, dropout_rate=0.0, decoder_start_token_id=0,
                  pad_token_id=0, eos_token_id=EOS_ID)


def save_random_model(c: ModelConfig, out_dir: str, seed: int = 0) -> None:
  """A seeded randomly initialised model, saved with `save_pretrained` (safetensors).

  The LM head gets its own weights (mT5 does not tie it), and its EOS column is zeroed: with
  random weights the other logits spread with std ~sqrt(d_model), so EOS (logit 0) is never
  sampled and both sides decode every row to the full length with their normal stopping rule.
  """
  torch.manual_seed(seed)
  model = T5ForConditionalGeneration(hf_config(c))
  head = torch.randn(c.vocab_size, c.emb_dim)
  head[EOS_ID] = 0.0
  model.lm_head.weight = torch.nn.Parameter(head)  # unties it from `shared`
  model.save_pretrained(out_dir)


def load_model(path: str) -> "T5ForConditionalGeneration":
  """from_pretrained keeps a stored lm_head that differs from the embedding untied."""
  transformers.logging.set_verbosity_error()  # the expected "will NOT tie them" warning
  return T5ForConditionalGeneration.from_pretrained(path)


def logits(model, enc: np.ndarray, dec_in: np.ndarray) -> np.ndarray:
  model.eval()
  with torch.no_grad():
    out = model(input_ids=torch.from_numpy(enc), decoder_input_ids=torch.from_numpy(dec_in))
  return out.logits.numpy()


def generate(model, enc: np.ndarray, n: int, new_tokens: int, seed: int):
  """Sample n continuations per input: (decoded positions = rows x steps, as counted for ours;
  rows that emitted EOS)."""
  model.eval()
  torch.manual_seed(seed)
  with torch.no_grad():
    out = model.generate(input_ids=torch.from_numpy(enc),
                         attention_mask=torch.ones(enc.shape, dtype=torch.long), do_sample=True,
                         num_return_sequences=n, max_new_tokens=new_tokens, top_k=0, top_p=1.0,
                         temperature=1.0)
  generated = out[:, 1:]  # after the decoder start token
  return generated.numel(), int((generated == EOS_ID).any(-1).sum())


def _optimizer(params):
  # optax.adafactor's defaults: lr 1e-3, parameter scaling, update clipping 1.0, decay 0.8.
  return Adafactor(params, lr=1e-3, scale_parameter=True, relative_step=False, warmup_init=False,
                   clip_threshold=1.0, decay_rate=-0.8, beta1=None, weight_decay=0.0)


def sft_stepper(model, batch: dict):
  """`run_one()`: forward + backward + Adafactor on the LM loss, as a PyTorch user writes it."""
  model.train()
  opt = _optimizer(model.parameters())
  t = {k: torch.from_numpy(v) for k, v in batch.items()}

  def run_one():
    out = model(input_ids=t["encoder_input_tokens"], decoder_input_ids=t["decoder_input_tokens"],
                labels=t["decoder_target_tokens"].long(), use_cache=False)
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out.loss.item()
  return run_one


class RewardModel(torch.nn.Module):
  """The T5 backbone plus a bias-free scalar head on the final decoder state (as ours)."""

  def __init__(self, lm, head_kernel: np.ndarray):
    super().__init__()
    self.encoder, self.decoder = lm.encoder, lm.decoder
    self.head = torch.nn.Linear(head_kernel.shape[0], 1, bias=False)
    with torch.no_grad():
      self.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(head_kernel.T)))

  def forward(self, enc, dec_in, dec_tgt):
    """Rewards [B * rows] for `rows` decoder rows per input, read at each row's last token."""
    rows = dec_in.shape[0] // enc.shape[0]
    hidden = self.encoder(input_ids=enc).last_hidden_state
    # One encoder pass for chosen and rejected, as ours does.
    hidden = hidden.repeat_interleave(rows, dim=0)
    states = self.decoder(input_ids=dec_in, encoder_hidden_states=hidden,
                          use_cache=False).last_hidden_state
    last = ((dec_tgt > 0).sum(-1) - 1).clamp(min=0)
    return self.head(states[torch.arange(states.shape[0]), last])[:, 0]


def rm_stepper(rm: RewardModel, batch: dict):
  """`run_one()`: pairwise Bradley-Terry step, chosen and rejected interleaved per input."""
  rm.train()
  opt = _optimizer([p for p in rm.parameters() if p.requires_grad])
  t = {k: torch.from_numpy(v) for k, v in batch.items()}

  def both(name):
    return torch.stack([t[f"chosen_{name}"], t[f"rejected_{name}"]], 1).reshape(
        -1, t[f"chosen_{name}"].shape[-1])
  dec_in, dec_tgt = both("decoder_input_tokens"), both("decoder_target_tokens")

  def run_one():
    r = rm(t["encoder_input_tokens"], dec_in, dec_tgt).reshape(-1, 2)
    loss = -torch.nn.functional.logsigmoid(r[:, 0] - r[:, 1]).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()
  return run_one


def rewards(rm: RewardModel, enc: np.ndarray, dec_in: np.ndarray, dec_tgt: np.ndarray):
  rm.eval()
  with torch.no_grad():
    return rm(*(torch.from_numpy(x) for x in (enc, dec_in, dec_tgt))).numpy()


def peak_matmul(size: int, repeats: int) -> float:
  """Median float32 GFLOP/s of a size x size matmul (reference for the JAX figure)."""
  a, b = torch.randn(size, size), torch.randn(size, size)
  torch.matmul(a, b)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    torch.matmul(a, b)
    times.append(time.perf_counter() - t0)
  return 2 * size ** 3 / float(np.median(times)) / 1e9
