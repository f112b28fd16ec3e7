"""The command line of the patching wrappers (cognates.py, codeswitch.py, oracle_reward.py,
likelihood_reward.py): parse one knob, install the patch, then run an `xlalign ...` command or a
script path in this process."""
import argparse
import runpy
import sys
import types
from typing import Callable, List


def run_command(command: List[str]) -> None:
  if command[:1] == ["xlalign"]:
    from xlalign_jax import cli
    sys.exit(cli.main(command[1:]))
  sys.argv = command
  runpy.run_path(command[0], run_name="__main__")


def replace_ppo_rewards(rewards: Callable) -> None:
  """PPO's view of the reward module only: best-of-n, the RM judge and rm_eval keep the RMs."""
  from xlalign_jax.trainers import ppo, reward
  ppo.reward = types.SimpleNamespace(**{**vars(reward), "rewards": rewards})


def main(description: str, knob: str, install: Callable[[float], None]) -> None:
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument(f"--{knob}", type=float, required=True)
  parser.add_argument("command", nargs=argparse.REMAINDER)
  args = parser.parse_args()
  install(getattr(args, knob))
  run_command(args.command)
