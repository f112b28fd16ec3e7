"""Run an xlalign command with PPO's reward model replaced by the synthetic world's oracle.

  cp -r W W_oracle && rm -rf W_oracle/stages/{ppo_*,judge,report}
  python research/rm_sweep/oracle_reward.py --scale 4 xlalign run \
      gin_configs/experiments/demo.gin --gin_bindings "ExperimentConfig.workdir='W_oracle'"

(W: a finished `xlalign demo --workdir W`.) Each PPO rollout's reward becomes `--scale` times the
oracle's quality of the sampled summary, computed on the host, in place of the RM's score;
everything else is the demo's: the value model starts from the RM, the KL penalty to the SFT
policy, the PPO update, the sampling and the judges. It asks whether the demo's PPO improves the
policy when the reward is right. If it does, what stands between the demo's PPO and a win over the
SFT policy is the reward model alone. (The RM judge's and the report's "source" still name the
RM whose checkpoint only initialized the value model.)
"""
import jax
import numpy as np

from xlalign_jax.score import EOS_ID
from xlalign_jax.synthetic import formats

import wrap


def _text(vocab, ids) -> str:
  ids = [int(i) for i in ids]
  return vocab.decode(ids[:ids.index(EOS_ID)] if EOS_ID in ids else ids)


def _lang(input_text: str) -> str:
  """The language a summarization input asks for (formats.py writes its name)."""
  instruction = input_text.split(":", 1)[0]
  for code, name in formats.LANGUAGE_NAMES.items():
    if instruction.endswith(f" {name}"):
      return code
  raise ValueError(f"no language in {instruction!r}")


def install(scale: float) -> None:
  cache = {}

  def oracle_scores(encoder_tokens, target_tokens):
    import xlalign_tasks
    from xlalign_jax.synthetic.oracle import Oracle
    if "oracle" not in cache:
      cache["oracle"] = Oracle.from_data_dir(xlalign_tasks.settings.data_dir())
    vocab = xlalign_tasks.VOCABULARY
    inputs = [_text(vocab, row) for row in np.asarray(encoder_tokens)]
    outputs = [_text(vocab, row) for row in np.asarray(target_tokens)]
    return np.array([scale * cache["oracle"].quality(_lang(x), x, y)
                     for x, y in zip(inputs, outputs)], np.float32)

  def rewards(model, params, encoder_tokens, decoder_input_tokens, target_tokens, rng=None):
    del model, params, decoder_input_tokens, rng
    shape = jax.ShapeDtypeStruct(target_tokens.shape[:1], np.float32)
    return jax.pure_callback(oracle_scores, shape, encoder_tokens, target_tokens)

  wrap.replace_ppo_rewards(rewards)


if __name__ == "__main__":
  wrap.main(__doc__.split("\n")[0], "scale", install)
