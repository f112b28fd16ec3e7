"""`xlalign inspect`: write a task's examples as JSON lines of their text, before tokenization.

  xlalign inspect xlalign_v1.oasst.en.rm --data_dir DATA_DIR --split train,validation \
      --output /tmp/oasst_en_rm.jsonl

Keys per line: `inputs`, `targets` (SFT); `inputs`, `targets`, `label` (pointwise RM); `inputs`,
`chosen`, `rejected` (pairwise RM); `inputs` (prompts); plus `lang`, `id` and `group` (the article
or message tree the example shares its input with). A mixture writes the
examples of each of its tasks in turn. With `--lengths inputs=1024,targets=512` it also prints how
many examples those lengths would truncate (this tokenizes, so it needs the vocabulary).
"""
import json
import os
from typing import Dict, List

from xlalign_jax.errors import UserError

IMPORTS = ("xlalign_jax.data_pipeline",)  # jax, TensorFlow, seqio: not for `--help`

TEXT_KEYS = ("inputs", "targets", "chosen", "rejected", "label")
TRACE_KEYS = ("lang", "id", "group")


def add_arguments(parser) -> None:
  parser.add_argument("task", help="task or mixture name, e.g. xlalign_v1.seahorse.en.rm")
  parser.add_argument("--data_dir", help="data directory (default: $XLALIGN_DATA_DIR)")
  parser.add_argument("--vocab", help="sentencepiece model (default: DATA_DIR/spm/...)")
  parser.add_argument("--split", action="append",
                      help="split to write; repeat or comma-separate for several (default: train)")
  parser.add_argument("--limit", type=int, help="at most this many examples per split and task")
  parser.add_argument("--output", required=True, help="JSON lines file to write")
  parser.add_argument("--strict", action="store_true",
                      help="fail on bad input in data files instead of skipping and counting it")
  parser.add_argument("--lengths", help="e.g. inputs=1024,targets=512: report truncation at these")


def run(args) -> None:
  import seqio  # pylint: disable=g-import-not-at-top
  import xlalign_tasks  # pylint: disable=g-import-not-at-top  (registers the tasks)
  from xlalign_jax import data_pipeline  # pylint: disable=g-import-not-at-top  (IMPORTS)

  xlalign_tasks.configure(data_dir=args.data_dir, vocab_path=args.vocab, strict=args.strict or None)
  provider = data_pipeline.get_task(args.task)
  tasks = list(provider.tasks) if isinstance(provider, seqio.Mixture) else [provider]
  splits = _splits(args.split, tasks)
  lengths = _parse_lengths(args.lengths) if args.lengths else None  # a typo fails before the work
  keys = [k for k in TEXT_KEYS if k in provider.output_features] + list(TRACE_KEYS)
  counts = {}
  if os.path.dirname(args.output):
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, "w", encoding="utf-8") as f:
    for split in splits:
      for task in tasks:
        for example in data_pipeline.text_examples(task, split, args.limit):
          f.write(json.dumps({k: example[k] for k in keys if k in example}, ensure_ascii=False))
          f.write("\n")
          counts[split] = counts.get(split, 0) + 1
  per_split = ", ".join(f"{s} {counts.get(s, 0)}" for s in splits)
  print(f"wrote {sum(counts.values())} examples of {args.task} ({per_split}) to {args.output}")
  if lengths:
    _print_truncation(tasks, splits, lengths, args.limit)


def _splits(flags, tasks) -> List[str]:
  splits = [s.strip() for flag in (flags or ["train"]) for s in flag.split(",") if s.strip()]
  for task in tasks:
    unknown = [s for s in splits if s not in task.splits]
    if unknown:
      raise UserError(f"task {task.name} has no split {unknown[0]!r}; "
                      f"its splits: {', '.join(task.splits)}")
  return list(dict.fromkeys(splits))


def _parse_lengths(text: str) -> Dict[str, int]:
  try:
    return {k.strip(): int(v) for k, v in (item.split("=") for item in text.split(","))}
  except ValueError as exc:
    raise UserError(f"--lengths {text!r}: expected name=int pairs, e.g. inputs=1024,targets=512"
                    ) from exc


def _print_truncation(tasks, splits, lengths, limit) -> None:
  # pylint: disable-next=g-import-not-at-top
  from xlalign_jax.feature_converters import truncation_report
  for split in splits:
    for task in tasks:
      ds = task.get_dataset(sequence_length=None, split=split, shuffle=False)
      if limit is not None:
        ds = ds.take(limit)
      for feature, r in truncation_report(ds, lengths).items():
        print(f"{task.name} {split} {feature}: {r['truncated']} of {r['examples']} examples "
              f"longer than {lengths[feature]} tokens (longest {r['max_length']})")
