"""`xlalign synth`: write the synthetic world (the embedded default data) to a data directory.

  xlalign synth --out DATA_DIR [--langs en,es,ru,de,tr,vi] [--seed 0] [--articles_per_lang N ...]
"""
import argparse
import dataclasses
import time

from xlalign_jax.synthetic import languages, writer

_UNITS = {".tsv": "rows", "articles.jsonl": "articles", "trees.jsonl": "trees", ".txt": "documents",
          ".vocab": "pieces"}


def add_arguments(parser: argparse.ArgumentParser):
  parser.add_argument("--out", required=True, help="data directory to write")
  parser.add_argument("--langs", default=",".join(languages.LANG_CODES),
                      help="comma-separated language codes (default: all six)")
  parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
  for field in dataclasses.fields(writer.Sizes):
    parser.add_argument(f"--{field.name}", type=int, default=field.default,
                        help=f"size knob (default {field.default})")


def run(args: argparse.Namespace):
  langs = [code.strip() for code in args.langs.split(",") if code.strip()]
  sizes = {field.name: getattr(args, field.name) for field in dataclasses.fields(writer.Sizes)}
  start = time.perf_counter()
  counts = writer.write_world(args.out, langs, args.seed, **sizes)
  seconds = time.perf_counter() - start
  print(f"wrote a synthetic world ({writer.NOTE}) to {args.out} in {seconds:.1f}s: "
        f"seed {args.seed}, languages {','.join(languages.check_langs(langs))}")
  for path, count in counts.items():
    unit = next(u for suffix, u in _UNITS.items() if path.endswith(suffix))
    print(f"  {path:<32} {count:>7} {unit}")
