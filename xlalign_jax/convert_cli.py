"""`xlalign convert`: import a T5X or Hugging Face T5 / mT5 checkpoint as an orbax checkpoint.

  xlalign convert --from t5x --checkpoint gs_copy/checkpoint_1000000 --out /tmp/mt5_base
  xlalign convert --from hf --checkpoint ./mt5-small --out /tmp/mt5_small

The output directory is self-describing (parameters + model config at step 0), so it can be
passed to `--checkpoint` of `xlalign score`, or as INITIAL_CHECKPOINT_PATH of a training run.
"""
import argparse
import os

from xlalign_jax import convert
from xlalign_jax.errors import UserError

_LOADERS = {"t5x": convert.load_t5x, "hf": convert.load_hf}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--from", dest="source", required=True, choices=sorted(_LOADERS),
                      help="t5x: a legacy msgpack or tensorstore T5X checkpoint (file or "
                           "checkpoint_N dir); hf: a Hugging Face model dir or weights file "
                           "(safetensors or flax_model.msgpack)")
  parser.add_argument("--checkpoint", required=True, help="the checkpoint to import")
  parser.add_argument("--out", required=True, help="output directory (orbax checkpoint, step 0)")


def run(args: argparse.Namespace) -> None:
  from xlalign_jax import checkpoints  # orbax is slow to import; only needed past the flags

  if os.path.exists(args.out) and os.listdir(args.out):
    raise UserError(f"--out {args.out} exists and is not empty")
  params, config = _LOADERS[args.source](args.checkpoint)
  print(f"read {args.source} checkpoint {args.checkpoint}")
  print(f"model config: {config.to_json()}")
  print(f"parameters: {convert.param_count(params):,}")
  step_dir = checkpoints.save_params(args.out, params, config,
                                     meta={"converted_from": args.source,
                                           "source": os.path.abspath(args.checkpoint)})
  print(f"wrote {step_dir}")
