"""Everything an RM sweep needs, as NumPy arrays: no TensorFlow or seqio where it runs.

  python research/rm_sweep/prepare.py DATA_DIR CANDIDATES.jsonl OUT.npz [--lang es]
      [--sft SFT_CHECKPOINT] [--input_length 80] [--target_length 32]

OUT.npz: the `xlalign_v1.seahorse.<lang>.rm` train and validation rows after the RM trainer's
feature converter (`train/<feature>`, `validation/<feature>`), and best-of-n candidates
(CANDIDATES.jsonl: {"inputs", "candidates"} lines, as `xlalign bon` and `candidates.py` write)
tokenized as `xlalign bon` scores them (`bon/enc`, `bon/dec_in`, `bon/dec_tgt`). With --sft, the
SFT parameters the RM starts from go to OUT_params.npz (`params/<path>`, `model_config`).
"""
import argparse
import dataclasses
import json

import numpy as np
import seqio
from flax import traverse_util

from xlalign_jax import feature_converters, partitioning, training
from xlalign_jax.score import EOS_ID, pad_rows, shift_right


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("data_dir")
  parser.add_argument("candidates")
  parser.add_argument("out")
  parser.add_argument("--lang", default="es")
  parser.add_argument("--sft")
  parser.add_argument("--input_length", type=int, default=80)
  parser.add_argument("--target_length", type=int, default=32)
  args = parser.parse_args()
  import xlalign_tasks
  xlalign_tasks.configure(data_dir=args.data_dir)
  task = f"xlalign_v1.seahorse.{args.lang}.rm"
  arrays = {}
  for split in ("train", "validation"):
    ds = seqio.get_dataset(task, {"inputs": args.input_length, "targets": args.target_length},
                           dataset_split=split, shuffle=False, num_epochs=1,
                           feature_converter=feature_converters.converter_for(task))
    batches = list(ds.batch(4096).as_numpy_iterator())
    for key in batches[0]:
      arrays[f"{split}/{key}"] = np.concatenate([b[key] for b in batches])
    print(f"{split}: {len(arrays[f'{split}/label'])} rows, "
          f"{arrays[f'{split}/label'].mean():.3f} Yes")
  vocab = xlalign_tasks.VOCABULARY
  with open(args.candidates, encoding="utf-8") as f:
    rows = [json.loads(line) for line in f if line.strip()]
  encode = lambda text: list(vocab.encode(text)) + [EOS_ID]
  inputs = [encode(r["inputs"]) for r in rows]
  targets = [encode(c) for r in rows for c in r["candidates"]]
  arrays["bon/enc"] = pad_rows(inputs, max(map(len, inputs)), len(inputs))
  arrays["bon/dec_tgt"] = pad_rows(targets, max(map(len, targets)), len(targets))
  arrays["bon/dec_in"] = shift_right(arrays["bon/dec_tgt"])
  np.savez_compressed(args.out, **arrays)
  if args.sft:
    loaded = training.load_for_inference(args.sft, 8, partitioning.MeshConfig())
    params = {f"params/{k}": np.asarray(v)
              for k, v in traverse_util.flatten_dict(loaded.params, sep="/").items()}
    params["model_config"] = np.array(json.dumps(dataclasses.asdict(loaded.config)))
    np.savez_compressed(args.out.replace(".npz", "_params.npz"), **params)


if __name__ == "__main__":
  main()
