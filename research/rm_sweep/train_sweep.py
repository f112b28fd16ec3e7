"""Reward-model training runs from prepare.py's arrays, scoring best-of-n candidates as they go.

  python research/rm_sweep/train_sweep.py SWEEP.json OUT_DIR

Needs jax, flax, optax and gin only (no TensorFlow): it runs on accelerator machines whose image
lacks TensorFlow, where `xlalign train` cannot. SWEEP.json is a list of runs:

  {"name": "v4", "data": "v4.npz", "params": "sft_params.npz", "lr": 1e-3, "steps": 3000,
   "eval_at": [250, 1000, 3000], "optimizer": "adafactor", "warmup": 30, "batch": 32, "seed": 0,
   "mode": "pointwise" | "pairwise" | "mix",
   "readout": "last" | "mean" | "softmin" | "last+lm_mean" | "last+lm_sum",
   "zero_head": false, "fit_lm_init": false, "trainable": ["decoder/score_head", "lm_"],
   "also_validate": {"es": "es.npz"}}

pointwise is the RM trainer's loss (BCE on question 6, score at y's last token, the SFT backbone
plus a fresh head, linear warm-up then constant LR); pairwise is Bradley-Terry on every (Yes, No)
pair of summaries of the same article, batch/2 pairs a step; mix adds the two. At each eval_at
step a run records validation loss and accuracy and the rewards of every candidate, and for each
`also_validate` set (another prepare.py output, e.g. another language's rows) accuracy and ROC
AUC. "readout" reduces the head's per-token scores to the reward: at y's last token (the
package's RM), their mean over y, or a soft minimum (-log-sum-exp of minus the scores, so one bad
token can pull the reward down). "last+lm_mean" / "last+lm_sum" keep the SFT model's LM head and
add a * (mean / sum of y's token log-probabilities under the RM's own backbone) + b to the score at
the last token, a (from 1) and b (from 0) learnt with the rest: a head reading one decoder state
cannot see how surprising each token of y was, which is where the SFT model's fact check lives.
"zero_head" starts the score head at zero (with an LM readout: the reward starts as the SFT
model's likelihood). "fit_lm_init" (with an LM readout) zeroes the head too and fits a and b by
logistic regression of the label on the likelihood term over 2,048 train rows, so the reward
starts as the best likelihood-only reward instead of one that scores every row No. "trainable":
parameter path prefixes that train (default: all); the others keep their initial values.
OUT_DIR/sweep_results.json gets all runs (rewritten after each).
The loop is deliberately plain: no sharding, checkpoints or resume, which `xlalign train` has.
"""
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from xlalign_jax import losses, stats, training
from xlalign_jax.config import ModelConfig
from xlalign_jax.trainers.reward import reward_at_last_token

FEATURES = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")


LM_HEAD = "decoder/logits_dense/kernel"


def load_params(model, arrays, example, seed, lm_head=False):
  """The SFT parameters in `arrays` with a freshly initialised score head; with `lm_head`, also
  the SFT's LM head and the likelihood term's scale a = 1 and offset b = 0."""
  fresh = model.init(jax.random.PRNGKey(seed), *(example[k][:2] for k in FEATURES))["params"]
  flat = traverse_util.flatten_dict(fresh, sep="/")
  for key in flat:
    if not key.startswith("decoder/score_head"):
      flat[key] = jnp.asarray(arrays[f"params/{key}"])
  if lm_head:
    flat[LM_HEAD] = jnp.asarray(arrays[f"params/{LM_HEAD}"])
    flat["lm_scale"], flat["lm_offset"] = jnp.ones(()), jnp.zeros(())
  return traverse_util.unflatten_dict(flat, sep="/")


def lm_rewards(rm_model, lm_model, p, enc, dec_in, dec_tgt, how):
  """Score at y's last token + a * (mean or sum of y's token log-probabilities) + b."""
  flat = traverse_util.flatten_dict(p, sep="/")
  rm_params = {k: v for k, v in flat.items()
               if k not in (LM_HEAD, "lm_scale", "lm_offset")}
  lm_params = {k: v for k, v in flat.items()
               if not k.startswith("decoder/score_head") and k not in ("lm_scale", "lm_offset")}
  scores = rm_model.apply({"params": traverse_util.unflatten_dict(rm_params, sep="/")}, enc,
                          dec_in, dec_tgt)
  logits = lm_model.apply({"params": traverse_util.unflatten_dict(lm_params, sep="/")}, enc,
                          dec_in, dec_tgt)
  valid = dec_tgt > 0
  lp = jnp.sum(jnp.where(valid, losses.token_log_probs(logits, dec_tgt), 0.0), -1)
  if how == "last+lm_mean":
    lp = lp / jnp.maximum(jnp.sum(valid, -1), 1)
  return reward_at_last_token(scores, dec_tgt) + p["lm_scale"] * lp + p["lm_offset"]


def logistic_fit(design, y, iters=50):
  """Weights w maximizing the likelihood of y ~ Bernoulli(sigmoid(design @ w)) (design [n, k],
  a column of ones for an intercept): Newton's method."""
  w = np.zeros(design.shape[1])
  for _ in range(iters):
    p = 1 / (1 + np.exp(-design @ w))
    hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-6 * np.eye(len(w))
    w += np.linalg.solve(hessian, design.T @ (y - p))
  return w


def fit_likelihood_term(model, lm_model, params, train, how, rows=2048):
  """a, b fitted by logistic regression of the label on the likelihood term over `rows` train
  rows. `params` has a zero score head and a = 1, b = 0, so the reward is the term itself."""
  term = jax.jit(lambda p, *b: lm_rewards(model, lm_model, p, *b, how))
  lp = np.concatenate([term(params, *(train[k][i:i + 256] for k in FEATURES))
                       for i in range(0, min(rows, len(train["label"])), 256)])
  a, b = logistic_fit(np.stack([lp, np.ones_like(lp)], 1), train["label"][:len(lp)].astype(float))
  print(f"likelihood term fitted: a = {a:.3f}, b = {b:.3f}", flush=True)
  params["lm_scale"], params["lm_offset"] = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  return params


def read_out(scores, target_tokens, how):
  """Per-token scores f[B, T] -> rewards f[B], by `how` (see the module docstring)."""
  if how == "last":
    return reward_at_last_token(scores, target_tokens)
  valid = target_tokens > 0
  if how == "mean":
    return jnp.sum(jnp.where(valid, scores, 0.0), -1) / jnp.maximum(jnp.sum(valid, -1), 1)
  if how == "softmin":
    return -jax.nn.logsumexp(jnp.where(valid, -scores, -jnp.inf), axis=-1)
  raise ValueError(f"unknown readout {how!r}")


def same_article_pairs(train):
  """(chosen, rejected) row indices of every Yes / No pair of summaries of one article."""
  groups = {}
  for i, row in enumerate(train["encoder_input_tokens"]):
    groups.setdefault(row.tobytes(), []).append(i)
  pairs = [(a, b) for rows in groups.values() for a in rows for b in rows
           if train["label"][a] == 1 and train["label"][b] == 0]
  return np.array(pairs).reshape(-1, 2)


def run_one(run, arrays, out):
  t0 = time.time()
  cfg = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in json.loads(str(arrays["model_config"])).items()})
  model = training.build_model(cfg, score_head=True)
  train = {k: arrays[f"train/{k}"] for k in FEATURES + ("label",)}
  val = {k: arrays[f"validation/{k}"] for k in FEATURES + ("label",)}
  readout = run.get("readout", "last")
  lm_model = training.build_model(cfg) if "+lm_" in readout else None
  params = load_params(model, arrays, train, run.get("seed", 0), lm_head=lm_model is not None)
  if run.get("fit_lm_init") and lm_model is None:
    raise ValueError(f"run {run['name']}: fit_lm_init needs a readout with a likelihood term")
  if run.get("zero_head") or run.get("fit_lm_init"):
    params["decoder"]["score_head"] = jax.tree.map(jnp.zeros_like, params["decoder"]["score_head"])
  if run.get("fit_lm_init"):
    params = fit_likelihood_term(model, lm_model, params, train, readout)
  optimizer = training.make_optimizer(training.OptimizerConfig(
      run.get("optimizer", "adafactor"), run["lr"], run.get("warmup", 30)))
  opt_state = optimizer.init(params)
  mode, batch = run.get("mode", "pointwise"), run.get("batch", 32)

  def rewards(p, enc, dec_in, dec_tgt):
    if lm_model is not None:
      return lm_rewards(model, lm_model, p, enc, dec_in, dec_tgt, readout)
    return read_out(model.apply({"params": p}, enc, dec_in, dec_tgt), dec_tgt, readout)

  def loss_fn(p, b):
    r = rewards(p, b["encoder_input_tokens"], b["decoder_input_tokens"],
                b["decoder_target_tokens"])
    label = b["label"].astype(jnp.float32)
    loss = losses.pointwise_bce_loss(r, label, jnp.ones_like(label))
    if mode == "pointwise":
      return loss
    k = r.shape[0] // 2  # rows [0, k) chosen, [k, 2k) rejected: the same articles
    pair = losses.bradley_terry_loss(r[:k], r[k:], weights=jnp.ones((k,)))
    return pair + loss if mode == "mix" else pair

  trainable = tuple(run.get("trainable", ("",)))  # path prefixes; the rest stays frozen

  def frozen_to_zero(tree):
    return traverse_util.unflatten_dict(
        {k: x if k.startswith(trainable) else jnp.zeros_like(x)
         for k, x in traverse_util.flatten_dict(tree, sep="/").items()}, sep="/")

  @jax.jit
  def step(p, state, b):
    loss, grads = jax.value_and_grad(loss_fn)(p, b)
    # Gradients: so that global-norm clipping sees only the trained leaves; updates: so that
    # weight decay does not move a frozen one.
    updates, state = optimizer.update(frozen_to_zero(grads), state, p)
    return optax.apply_updates(p, frozen_to_zero(updates)), state, loss

  score = jax.jit(rewards)
  rng = np.random.default_rng(run.get("seed", 0))
  pairs = same_article_pairs(train) if mode != "pointwise" else None
  order, pos = rng.permutation(len(train["label"])), 0
  record = {"name": run["name"], "val": [], "bon": {}}
  extra = {}
  for name, path in run.get("also_validate", {}).items():
    with np.load(path) as other:
      extra[name] = {k: other[f"validation/{k}"] for k in FEATURES + ("label",)}
  n = arrays["bon/dec_tgt"].shape[0] // arrays["bon/enc"].shape[0]
  for s in range(1, run["steps"] + 1):
    if pairs is not None:
      chosen = pairs[rng.integers(0, len(pairs), batch // 2)]
      idx = np.concatenate([chosen[:, 0], chosen[:, 1]])
    else:
      if pos + batch > len(order):
        order, pos = rng.permutation(len(train["label"])), 0
      idx, pos = order[pos:pos + batch], pos + batch
    params, opt_state, _ = step(params, opt_state, {k: v[idx] for k, v in train.items()})
    if s not in run["eval_at"]:
      continue
    val_rewards = lambda rows: np.concatenate(
        [score(params, *(rows[k][i:i + 512] for k in FEATURES))
         for i in range(0, len(rows["label"]), 512)])
    r = val_rewards(val)
    label = val["label"].astype(float)
    for name, rows in extra.items():
      other = val_rewards(rows)
      accuracy = float(np.mean((other > 0) == (rows["label"] > 0.5)))
      auc = float(stats.roc_auc(other, rows["label"] > 0.5))
      record.setdefault("also_validate", {}).setdefault(name, []).append([s, accuracy, auc])
      print(f"{run['name']} step {s} on {name}: accuracy {accuracy:.3f}, AUC {auc:.3f}",
            flush=True)
    val_loss = float(losses.pointwise_bce_loss(r, label))
    accuracy = float(np.mean((r > 0) == (label > 0.5)))
    enc = arrays["bon/enc"]  # one encoder pass per prompt; the decoder takes its n candidates
    bon = np.concatenate([score(params, enc[i:i + 16],
                                arrays["bon/dec_in"][i * n:(i + 16) * n],
                                arrays["bon/dec_tgt"][i * n:(i + 16) * n])
                          for i in range(0, len(enc), 16)])
    record["val"].append([s, val_loss, accuracy])
    record["bon"][str(s)] = bon.tolist()
    print(f"{run['name']} step {s}: validation loss {val_loss:.4f}, accuracy {accuracy:.3f} "
          f"({time.time() - t0:.0f} s)", flush=True)
  return record


def main():
  sweep_path, out_dir = sys.argv[1:3]
  with open(sweep_path, encoding="utf-8") as f:
    runs = json.load(f)
  os.makedirs(out_dir, exist_ok=True)  # before the first run, so its results have somewhere to go
  cache, records = {}, []
  for run in runs:
    arrays = {}
    for path in (run["data"], run["params"]):
      if path not in cache:
        cache[path] = dict(np.load(path))
      arrays.update(cache[path])
    records.append(run_one(run, arrays, out_dir))
    with open(os.path.join(out_dir, "sweep_results.json"), "w", encoding="utf-8") as f:
      json.dump(records, f)


if __name__ == "__main__":
  main()
