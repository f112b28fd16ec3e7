"""Run an xlalign command with PPO's reward replaced by an SFT model's likelihood of the sample.

  cp -r W W_lik && rm -rf W_lik/stages/{ppo_*,judge,report}
  python research/rm_sweep/likelihood_reward.py --sft W/stages/sft_es/model --scale 0.446 \
      --offset 0.95 xlalign run gin_configs/experiments/demo.gin \
      --gin_bindings "ExperimentConfig.workdir='W_lik'" \
      --gin_bindings "ExperimentConfig.ppo_pairs=(('es','es'),)"

(W: a finished `xlalign demo --workdir W`.) Each PPO rollout's reward becomes `--scale` x (the
`--sft` model's mean token log-probability of the sampled summary given its prompt) + `--offset`:
the likelihood-started RM of this directory's README ("Session 18"), whose scale and offset
train_sweep.py's `"fit_lm_init"` prints. Everything else is the demo's PPO (value model from the
RM, KL penalty to the SFT policy, update, sampling, judges). It asks whether PPO gains over the SFT
policy with a reward that picks well in best-of-n. (The report's "source" still names the RM whose
checkpoint only initialized the value model.)
"""
import argparse

from xlalign_jax import losses, partitioning, training

import wrap


def install(sft: str, scale: float, offset: float) -> None:
  loaded = training.load_for_inference(sft, 8, partitioning.MeshConfig())

  def rewards(model, params, encoder_tokens, decoder_input_tokens, target_tokens, rng=None):
    del model, params, rng
    logits = loaded.model.apply({"params": loaded.params}, encoder_tokens, decoder_input_tokens,
                                target_tokens)
    mean = losses.masked_mean(losses.token_log_probs(logits, target_tokens), target_tokens > 0,
                              axis=-1)
    return scale * mean + offset

  wrap.replace_ppo_rewards(rewards)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sft", required=True)
  parser.add_argument("--scale", type=float, required=True)
  parser.add_argument("--offset", type=float, default=0.0)
  parser.add_argument("command", nargs=argparse.REMAINDER)
  args = parser.parse_args()
  install(args.sft, args.scale, args.offset)
  wrap.run_command(args.command)


if __name__ == "__main__":
  main()
