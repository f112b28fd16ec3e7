"""RM validation accuracy (issue 5's first criterion) against the RM stage's settings, on a
finished demo's world and SFT models.

  python research/rm_sweep/rm_accuracy_sweep.py WORKDIR OUT [--langs en,es,ru]
      [--variants "lr=1e-3,steps=250;lr=3e-4,steps=500,eval_period=50;..."]

Each variant (';'-separated; keys: lr, steps, warmup, eval_period, eval_examples (0: all),
batch_size, seed, dropout: the RM's dropout rate, the model's otherwise; optimizer: the RM's,
adafactor or adamw; head_init: random or zeros, the RM's score head) trains one RM per language
exactly as the experiment's RM stage does (`Experiment._rm`'s trainer, from WORKDIR/stages/sft_LANG,
its validation-loss checkpoint kept), into OUT/VARIANT/rm_LANG, and scores it with `rm_eval` on the
language's whole validation split. Printed and appended to OUT/results.jsonl: accuracy, and the
paired differences from the majority and length baselines with their 95% intervals.
"""
import argparse
import dataclasses
import json
import pathlib
import time

from xlalign_jax import experiment, gin_utils, rm_eval

KEYS = {"lr": float, "steps": int, "warmup": int, "eval_period": int, "eval_examples": int,
        "batch_size": int, "seed": int, "dropout": float, "optimizer": str, "head_init": str}


def parse_variant(text: str) -> dict:
  variant = {}
  for item in text.split(","):
    key, value = item.split("=")
    variant[key.strip()] = KEYS[key.strip()](value)
  return variant


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdir")
  parser.add_argument("out")
  parser.add_argument("--langs", default="en,es,ru")
  parser.add_argument("--variants", default="lr=1e-3,steps=250")
  args = parser.parse_args()
  workdir, out = pathlib.Path(args.workdir), pathlib.Path(args.out)
  gin_utils.parse([str(workdir / "config.gin")], [f"ExperimentConfig.workdir = '{workdir}'"])
  base = gin_utils.call_configured(experiment.ExperimentConfig)
  for text in args.variants.split(";"):
    v = parse_variant(text)
    name = text.replace(",", "_").replace("=", "")
    cfg = dataclasses.replace(
        base, rm_lr=v.get("lr", base.rm_lr), rm_steps=v.get("steps", base.rm_steps),
        rm_warmup_steps=v.get("warmup", base.rm_warmup_steps),
        eval_period=v.get("eval_period", base.eval_period),
        eval_examples=v.get("eval_examples", base.eval_examples) or None,
        model_config=dataclasses.replace(
            base.model_config, dropout_rate=v.get("dropout", base.model_config.dropout_rate)),
        batch_size=v.get("batch_size", base.batch_size), seed=v.get("seed", base.seed),
        rm_optimizer=v.get("optimizer", base.rm_optimizer),
        rm_head_init=v.get("head_init", base.rm_head_init))
    exp = experiment.Experiment(cfg)
    exp.configure_tasks()
    import xlalign_tasks  # pylint: disable=g-import-not-at-top  (after configure_tasks)
    for lang in args.langs.split(","):
      stage = out / name / f"rm_{lang}"
      stage.mkdir(parents=True, exist_ok=True)
      start = time.time()
      exp._rm(stage, lang)  # pylint: disable=protected-access
      seconds = time.time() - start
      (entry,) = rm_eval.evaluate([f"{lang}={stage / 'model'}"], [exp.task(lang, "rm")],
                                  xlalign_tasks.VOCABULARY)
      row = {"variant": text, "lang": lang, "train_seconds": round(seconds, 1),
             **{k: entry[k] for k in ("n", "accuracy", "majority", "vs_majority",
                                      "vs_majority_ci_low", "vs_majority_ci_high",
                                      "length_baseline", "vs_length", "vs_length_ci_low",
                                      "vs_length_ci_high", "auc")}}
      with open(out / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
      print(f"{text:<40} {lang}: acc {row['accuracy']:.3f}  vs majority "
            f"{row['vs_majority']:+.3f} [{row['vs_majority_ci_low']:+.3f}, "
            f"{row['vs_majority_ci_high']:+.3f}]  vs length {row['vs_length']:+.3f} "
            f"[{row['vs_length_ci_low']:+.3f}, {row['vs_length_ci_high']:+.3f}]  "
            f"({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
  main()
