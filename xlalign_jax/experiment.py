"""The whole cross-lingual grid as resumable stages: `xlalign run EXPERIMENT.gin` / `xlalign demo`.

  data (synthetic world) -> pretrain (synthetic world only) -> SFT per language -> RM per language
  -> RM accuracy matrix -> best-of-n for every (source RM, target policy) pair -> PPO for the
  configured pairs -> judging (both orders, bootstrap CIs) -> report (results.json/csv, report.md,
  plots).

Every stage writes its outputs under the workdir with its configuration (`stage_config.json`) and a
`DONE` marker last; a stage whose marker exists is skipped, and training stages resume from their
latest checkpoint, so re-running the same command after a crash or a kill finishes the grid
without redoing completed work.
"""
import dataclasses
import inspect
import json
import pathlib
import platform
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

import gin
import numpy as np

from xlalign_jax import (best_of_n, config_types, data_pipeline, decoding, fileio, generation,
                         judges, partitioning, provenance, rm_eval, training)
from xlalign_jax.config import ModelConfig
from xlalign_jax.errors import UserError
from xlalign_jax.score import Scorer


# Outputs no RM chose, judged for scale like every grid cell (the report's "For scale" section): the
# target SFT policy's greedy output, and the likeliest of its best-of-n samples.
REFERENCES = ("sft_greedy", "sft_likeliest")


@gin.configurable
@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """A source x target grid. Lengths are in tokens; steps and sizes default to the CPU demo."""
  workdir: str = gin.REQUIRED
  dataset: str = "seahorse"  # seahorse (summarization, pointwise RM) | oasst (dialog, pairwise RM)
  langs: Tuple[str, ...] = ("en", "es", "ru")
  ppo_pairs: Tuple[Tuple[str, str], ...] = (("en", "es"), ("es", "es"))  # (source RM, target)
  data_dir: Optional[str] = None  # None: generate the synthetic world into workdir/data
  vocab_path: Optional[str] = None  # None: DATA_DIR/spm/sentencepiece.model
  initial_checkpoint: Optional[str] = None  # a converted mT5; None: pretrain (synthetic only)
  seed: int = 0
  world_sizes: Tuple[Tuple[str, int], ...] = ()  # write_world size knobs
  model_config: ModelConfig = gin.REQUIRED
  mesh_config: partitioning.MeshConfig = gin.REQUIRED
  optimizer: str = "adafactor"
  input_length: int = 128
  target_length: int = 32
  batch_size: int = 32
  pretrain_steps: int = 600
  pretrain_lr: float = 3e-3
  sft_steps: int = 200
  sft_lr: float = 2e-3
  rm_steps: int = 300
  rm_lr: float = 1e-3
  rm_warmup_steps: int = 30
  rm_optimizer: Optional[str] = None  # None: `optimizer`
  # The RM's score head: "random" (the module's initialiser) or "zeros" (needs rm_optimizer
  # 'adamw'): every response first scores 0, and the head learns from the SFT features first.
  rm_head_init: str = "random"
  eval_period: int = 100
  # The RM stage's own evaluation period (None: eval_period). Its checkpoint is the one with the
  # lowest validation loss at these evaluations, so a finer period picks among more of them.
  rm_eval_period: Optional[int] = None
  eval_examples: Optional[int] = 256  # validation examples per evaluation in training (None: all)
  checkpoint_period: int = 100
  bon_n: int = 16
  eval_prompts: int = 96
  max_decode_length: int = 40
  temperature: float = 1.0
  sample_batch_size: int = 16
  ppo_steps: int = 60
  ppo_batch_size: int = 16
  ppo_lr: float = 1e-4
  ppo_kl_beta: float = 0.1
  # With a target (nats of sequence KL), beta adapts from ppo_kl_beta to hold it (PPOConfig's
  # kl_target and kl_horizon; None: beta stays ppo_kl_beta, as in the paper).
  ppo_kl_target: Optional[float] = None
  ppo_kl_horizon: int = 10000
  ppo_value_warmup_steps: int = 10  # value model only, before policy updates start
  # PPOConfig.reward_normalization: none | running | batch. "running" standardises the RM's
  # scores over the run, so the KL penalty weighs the same against RMs of any score scale.
  ppo_reward_normalization: str = "none"
  # Passes over each rollout batch, in minibatches. With one pass of one batch the clipped
  # objective never clips (the policy is still the one that sampled): the demo's policy then barely
  # moved (KL 0.03 nats after 40 steps, reward flat); with 4 x 2 the RM reward rose by a quarter.
  ppo_epochs: int = 4
  ppo_minibatches: int = 2
  # A sequence KL to the SFT policy (nats) past which PPO warns (once per stretch of steps above
  # it), and the report counts the steps of each run above it (None: no bound). It changes no
  # result.
  ppo_max_kl: Optional[float] = None
  # Synthetic Seahorse: summaries per train/validation article that each language's SFT policy
  # writes and the world's raters rate, added to its RM data (synthetic/model_rows.py); 0: none.
  model_rows_per_article: int = 0
  rm_probe_articles: int = 200  # synthetic summarization: fresh articles per probe (0: no probe)
  eval_split: str = "test"  # prompts for best-of-n / PPO evaluation (OpenAssistant: validation)
  # oracle and sim_llm need the synthetic world; rm is the target language's RM; http an LLM judge
  judges: Tuple[str, ...] = ("oracle", "rm", "sim_llm")
  sim_llm_noise: float = 0.3
  sim_llm_position_bias: float = 0.3
  # The "http" judge's judges.HTTPJudge arguments, e.g. (('model', 'gpt-4o'), ('base_url',
  # 'https://api.openai.com/v1'), ('api_key_env', 'OPENAI_API_KEY')); the key stays in the env.
  http_judge: Tuple[Tuple[str, Any], ...] = ()
  # REFERENCES to judge; each costs a paid judge as much as one more system per target.
  judge_references: Tuple[str, ...] = REFERENCES

  def __post_init__(self):
    config_types.check_field_types(self)


JUDGES = ("oracle", "rm", "sim_llm", "http")

# The ExperimentConfig fields each kind of stage reads. A stage's outputs depend on its own fields
# and, through the stages before it, on theirs: a finished stage recorded with other values than
# the current config's for any of those would be skipped and mix two configurations' results.
# Every other field is named here as one that does not change results:
RESULT_NEUTRAL_FIELDS = ("workdir", "mesh_config", "checkpoint_period", "ppo_max_kl")
_TRAINING = ("model_config", "optimizer", "input_length", "target_length", "batch_size",
             "eval_period", "eval_examples", "seed")
_SAMPLING = ("max_decode_length", "temperature", "sample_batch_size")
STAGE_FIELDS = {
    "data": ("dataset", "langs", "seed", "world_sizes"),
    "pretrain": _TRAINING + ("pretrain_steps", "pretrain_lr"),
    "sft": _TRAINING + ("dataset", "data_dir", "vocab_path", "initial_checkpoint", "sft_steps",
                        "sft_lr"),
    "rate": _SAMPLING + ("model_rows_per_article",),
    # model_rows_per_article here too: with 0 there are no rate stages, but their rows remain.
    "rm": ("rm_steps", "rm_lr", "rm_warmup_steps", "rm_optimizer", "rm_head_init",
           "rm_eval_period", "model_rows_per_article"),
    "rm_eval": ("langs", "rm_probe_articles"),
    "bon": _SAMPLING + ("bon_n", "eval_prompts", "eval_split"),
    "ppo": ("ppo_steps", "ppo_batch_size", "ppo_lr", "ppo_kl_beta", "ppo_kl_target",
            "ppo_kl_horizon", "ppo_value_warmup_steps", "ppo_epochs", "ppo_minibatches",
            "ppo_reward_normalization"),
    "judge": ("ppo_pairs", "judges", "sim_llm_noise", "sim_llm_position_bias", "http_judge",
              "judge_references"),
    "report": (),
}


def stage_kind(name: str) -> str:
  """'sft_en' -> 'sft', 'ppo_en_es' -> 'ppo', 'rm_eval' -> 'rm_eval'."""
  return name if name == "rm_eval" else name.split("_")[0]


@dataclasses.dataclass
class Stage:
  name: str
  run: Callable[[pathlib.Path], Optional[dict]]
  weight: float  # rough cost (pretraining tokens' worth), for the ETA
  config: dict = dataclasses.field(default_factory=dict)
  # No JAX work (data generation, the report): process 0 alone runs it in a multi-host job.
  primary_only: bool = False


def write_json(path: pathlib.Path, obj) -> None:
  fileio.write_text(path, json.dumps(obj, indent=2, default=provenance.json_default,
                                     allow_nan=True))


class Experiment:
  """Builds the stage list from the config and runs it, skipping finished stages."""

  def __init__(self, cfg: ExperimentConfig):
    self.cfg = cfg
    self.root = pathlib.Path(cfg.workdir)
    self.synthetic = cfg.data_dir is None
    self.data_dir = str(self.root / "data") if self.synthetic else cfg.data_dir
    if cfg.dataset not in ("seahorse", "oasst"):
      raise UserError(f"unknown dataset {cfg.dataset!r} (seahorse or oasst)")
    self._check_langs()
    unknown = [p for p in cfg.ppo_pairs if p[0] not in cfg.langs or p[1] not in cfg.langs]
    if unknown:
      raise UserError(f"PPO pair {unknown[0]} uses a language outside langs {cfg.langs}")
    if cfg.model_rows_per_article and not (self.synthetic and cfg.dataset == "seahorse"):
      raise UserError("model_rows_per_article needs the synthetic world's Seahorse data (its "
                      "raters rate the summaries); set it to 0 for real data or OpenAssistant")
    self.http_judge = self._check_judges()
    self._check_settings()

  def _check_langs(self) -> None:
    """Every language has a synthetic stand-in or, with real data, registered tasks; none twice."""
    langs = self.cfg.langs
    repeated = sorted({lang for lang in langs if langs.count(lang) > 1})
    if repeated:
      raise UserError(f"ExperimentConfig.langs {tuple(langs)} names {', '.join(repeated)} twice")
    if self.synthetic:
      from xlalign_jax.synthetic import languages
      languages.check_langs(langs)
      return
    import importlib
    import seqio
    importlib.import_module("xlalign_tasks")  # registers the tasks
    missing = [self.task(lang, "sft") for lang in langs
               if self.task(lang, "sft") not in seqio.TaskRegistry.names()]
    if missing:
      raise UserError(f"no seqio task {missing[0]} for ExperimentConfig.langs {tuple(langs)}; "
                      f"{self.cfg.dataset} has tasks for "
                      + ", ".join(sorted({n.split('.')[2] for n in seqio.TaskRegistry.names()
                                          if n.startswith(f"xlalign_v1.{self.cfg.dataset}.")})))

  def _check_settings(self) -> None:
    """Settings that would fail a stage after the long ones before it fail now instead."""
    from xlalign_jax.data import oasst, seahorse
    c = self.cfg
    counts = ["input_length", "target_length", "batch_size", "sft_steps", "rm_steps",
              "eval_prompts", "max_decode_length", "sample_batch_size"]
    if self.synthetic and not c.initial_checkpoint:
      counts.append("pretrain_steps")
    if c.rm_eval_period is not None:
      counts.append("rm_eval_period")
    if not (self.synthetic or c.initial_checkpoint):
      # Only the synthetic world has a pretraining stage: SFT would start from random weights.
      raise UserError("ExperimentConfig.initial_checkpoint is needed with real data "
                      "(ExperimentConfig.data_dir): a pretrained mT5 converted with "
                      "`xlalign convert`")
    if c.ppo_pairs:
      counts += ["ppo_steps", "ppo_batch_size", "ppo_epochs", "ppo_minibatches"]
    for name in counts:
      if getattr(c, name) < 1:
        raise UserError(f"ExperimentConfig.{name} must be at least 1, got {getattr(c, name)}")
    if c.ppo_pairs and c.ppo_batch_size % c.ppo_minibatches:
      raise UserError(f"ExperimentConfig.ppo_batch_size {c.ppo_batch_size} does not split into "
                      f"ppo_minibatches={c.ppo_minibatches}")
    for name in (c.optimizer, self.rm_optimizer):
      training.make_optimizer(training.OptimizerConfig(name))  # its name, checked there
    training.check_new_params_init(c.rm_head_init, self.rm_optimizer,
                                   "ExperimentConfig.rm_head_init")
    from xlalign_jax.trainers import ppo
    if c.ppo_reward_normalization not in ppo.REWARD_NORMALIZATIONS:
      raise UserError(f"ExperimentConfig.ppo_reward_normalization must be one of "
                      f"{ppo.REWARD_NORMALIZATIONS}, got {c.ppo_reward_normalization!r}")
    splits = {"seahorse": seahorse.SPLITS, "oasst": oasst.SPLITS}[c.dataset]
    if c.eval_split not in splits:
      raise UserError(f"ExperimentConfig.eval_split {c.eval_split!r}: {c.dataset} has splits "
                      f"{', '.join(splits)}")
    self._sampling(c.bon_n, c.temperature)

  def _check_judges(self) -> Optional[judges.HTTPJudge]:
    """Every configured judge can run here; the HTTP judge, built now (bad arguments fail before
    any training), or None."""
    cfg = self.cfg
    for name in cfg.judges:
      if name not in JUDGES:
        raise UserError(f"unknown judge {name!r} in ExperimentConfig.judges; known: "
                        f"{', '.join(JUDGES)}")
      if name in ("oracle", "sim_llm") and not self.synthetic:
        raise UserError(f"judge {name!r} needs the synthetic world's oracle; with real data "
                        "(ExperimentConfig.data_dir) use 'rm' or 'http'")
    unknown = [name for name in cfg.judge_references if name not in REFERENCES]
    if unknown:
      raise UserError(f"unknown reference {unknown[0]!r} in ExperimentConfig.judge_references; "
                      f"known: {', '.join(REFERENCES)}")
    if "http" not in cfg.judges:
      return None
    kwargs = dict(cfg.http_judge)
    allowed = list(inspect.signature(judges.HTTPJudge).parameters)
    unknown = sorted(set(kwargs) - set(allowed))
    if "model" not in kwargs or unknown:
      raise UserError(f"judge 'http' needs ExperimentConfig.http_judge with a 'model' and only "
                      f"judges.HTTPJudge's arguments ({', '.join(allowed)}); got "
                      f"{sorted(kwargs) or 'none'}")
    return judges.HTTPJudge(**kwargs)

  # ---- paths and tasks ----
  def dir(self, *parts) -> pathlib.Path:
    return self.root.joinpath(*parts)

  def task(self, lang: str, kind: str) -> str:
    return f"xlalign_v1.{self.cfg.dataset}.{lang}.{kind}"

  def lengths(self, kind: str) -> Dict[str, int]:
    c = self.cfg
    if kind == "rm" and self.cfg.dataset == "oasst":
      return {"inputs": c.input_length, "chosen": c.target_length, "rejected": c.target_length}
    return {"inputs": c.input_length, "targets": c.target_length}

  def configure_tasks(self) -> None:
    import xlalign_tasks
    xlalign_tasks.configure(data_dir=self.data_dir, vocab_path=self.cfg.vocab_path)

  # ---- the stage list ----
  def stages(self) -> List[Stage]:
    """The stages in order, each with a rough cost for the ETA."""
    c = self.cfg
    seq = c.input_length + c.target_length
    # Costs in pretraining tokens (one forward + backward), fitted to the demo's stage times on two
    # 2-core CPUs (2026-12-07; an AMD EPYC at ~14k pretraining tokens/s, a Xeon at ~21k): an RM
    # token costs ~0.73 of one (no LM head, but more evaluation), a PPO step ~6.4 batches of them
    # (sampling, rewards, values and the demo's 4 x 2 update passes), a training stage has ~50k
    # tokens' worth of set-up (compilation, evaluation, checkpoints), and RM evaluation with its
    # probes ~390k per language. The earlier weights put the demo's remaining time 20-30% short.
    setup = 50e3
    train_cost = lambda steps, batch, factor=1.0: steps * batch * seq * factor + setup
    sample_cost = c.eval_prompts * c.bon_n * c.max_decode_length * 4
    s = []
    if self.synthetic:
      s.append(Stage("data", self._data, 0, {"langs": c.langs, "seed": c.seed,
                                              "sizes": dict(c.world_sizes)}, primary_only=True))
      if not c.initial_checkpoint:
        s.append(Stage("pretrain", self._pretrain, train_cost(c.pretrain_steps, c.batch_size)))
    for lang in c.langs:
      s.append(Stage(f"sft_{lang}", lambda d, l=lang: self._sft(d, l),
                     train_cost(c.sft_steps, c.batch_size)))
    if c.model_rows_per_article:
      from xlalign_jax.synthetic.writer import Sizes
      articles = dict(c.world_sizes).get("articles_per_lang", Sizes.articles_per_lang) * 0.8
      rows_cost = articles * c.model_rows_per_article * c.max_decode_length * 4
      for lang in c.langs:
        s.append(Stage(f"rate_{lang}", lambda d, l=lang: self._rate(d, l), rows_cost,
                       {"per_article": c.model_rows_per_article}))
    for lang in c.langs:
      s.append(Stage(f"rm_{lang}", lambda d, l=lang: self._rm(d, l),
                     train_cost(c.rm_steps, c.batch_size, 0.73)))
    s.append(Stage("rm_eval", self._rm_eval, len(c.langs) * 390e3))
    for lang in c.langs:
      s.append(Stage(f"bon_{lang}", lambda d, l=lang: self._bon(d, l), sample_cost))
    for source, target in c.ppo_pairs:
      s.append(Stage(f"ppo_{source}_{target}", lambda d, p=(source, target): self._ppo(d, *p),
                     train_cost(c.ppo_steps, c.ppo_batch_size, 6.4)))
    s.append(Stage("judge", self._judge, len(c.langs) * 20 * c.batch_size * seq))
    s.append(Stage("report", self._report, 0, primary_only=True))
    return s

  def check_finished_stages(self, stages: List[Stage]) -> None:
    """Refuses a workdir whose finished stages ran with other values of the fields they depend
    on (STAGE_FIELDS): skipped, they would mix two configurations' results."""
    current = provenance.plain_settings(self.cfg)
    fields = []
    for st in stages:
      fields += STAGE_FIELDS[stage_kind(st.name)]
      recorded_file = self.dir("stages", st.name, "stage_config.json")
      if not (self.dir("stages", st.name, "DONE").exists() and recorded_file.exists()):
        continue
      recorded = json.loads(recorded_file.read_text()).get("experiment", {})
      changed = provenance.changed_settings(recorded, current, dict.fromkeys(fields))
      if changed:
        raise UserError(
            f"stage {st.name} in {self.root} finished with {', '.join(changed)}; skipping it "
            f"would mix two configurations' results. Use another workdir, or delete "
            f"{self.dir('stages', st.name)} and the stages after it to redo them")

  def run(self) -> dict:
    partitioning.maybe_initialize_distributed(self.cfg.mesh_config)
    if self.root.exists() and not self.root.is_dir():
      raise UserError(f"workdir {self.root} exists and is not a directory")
    stages = self.stages()
    self.check_finished_stages(stages)
    self.root.mkdir(parents=True, exist_ok=True)
    fileio.write_text(self.root / "config.gin", gin.config_str())
    self.configure_tasks()
    total = sum(st.weight for st in stages)
    done_weight, seconds_for_done, t_start = 0.0, 0.0, time.time()
    for k, st in enumerate(stages, 1):
      out = self.dir("stages", st.name)
      marker = out / "DONE"
      elapsed = time.time() - t_start
      # ETA: the remaining estimated cost at the speed measured on the stages run so far.
      eta = (f", ETA {(total - done_weight) * seconds_for_done / done_weight / 60:.1f} min"
             if done_weight and seconds_for_done else "")
      if marker.exists():
        print(f"[stage {k}/{len(stages)}] {st.name}: done earlier, skipped", flush=True)
        total -= st.weight
        continue
      print(f"[stage {k}/{len(stages)}] {st.name} (elapsed {elapsed / 60:.1f} min{eta})",
            flush=True)
      out.mkdir(parents=True, exist_ok=True)
      write_json(out / "stage_config.json", {"stage": st.name, **st.config,
                                              "experiment": dataclasses.asdict(self.cfg)})
      t0 = time.time()
      try:
        if fileio.is_primary() or not st.primary_only:
          st.run(out)
      except UserError as exc:
        raise UserError(f"stage {st.name} failed: {exc}. Fix it and re-run the same command; "
                        "finished stages are skipped") from None
      except Exception as exc:  # an unexpected failure: keep the traceback, print one line
        log = out / fileio.per_process_name("error.log")
        log.write_text(traceback.format_exc())
        raise UserError(f"stage {st.name} failed: {type(exc).__name__}: {exc} (traceback in "
                        f"{log}); re-run the same command to resume") from None
      fileio.barrier(f"stage {st.name}")  # later stages read what this one wrote
      fileio.write_text(marker, f"{time.time() - t0:.1f} s\n")
      done_weight += st.weight
      seconds_for_done += time.time() - t0 if st.weight else 0.0
    results = json.loads((self.root / "results.json").read_text())
    if fileio.is_primary():  # the answer in the terminal too
      from xlalign_jax import report
      print("\n".join(report.summary_lines(results["winrates"],
                                            results.get("references", []))).rstrip())
    print(f"done in {(time.time() - t_start) / 60:.1f} min; report: {self.root / 'report.md'}")
    return results

  # ---- data and training stages ----
  def _data(self, out: pathlib.Path) -> None:
    from xlalign_jax.synthetic import write_world
    counts = write_world(self.data_dir, list(self.cfg.langs), self.cfg.seed,
                         **dict(self.cfg.world_sizes))
    write_json(out / "counts.json", counts)

  @property
  def rm_optimizer(self) -> str:
    return self.cfg.rm_optimizer or self.cfg.optimizer

  def _train(self, out: pathlib.Path, trainer: str, task: str, lengths: Dict[str, int],
             steps: int, lr: float, init: Optional[str], warmup: int = 0,
             optimizer: Optional[str] = None, new_params_init: str = "random",
             eval_period: Optional[int] = None) -> None:
    from xlalign_jax.trainers import loop, reward, sft
    c = self.cfg
    config = loop.LoopConfig(
        model_dir=str(out / "model"), train_steps=steps, mixture_or_task_name=task,
        task_feature_lengths=lengths, model_config=c.model_config, mesh_config=c.mesh_config,
        optimizer_config=training.OptimizerConfig(optimizer or c.optimizer, lr, warmup),
        batch_size=c.batch_size, checkpoint_period=c.checkpoint_period,
        eval_period=eval_period or c.eval_period, eval_examples=c.eval_examples,
        initial_checkpoint_path=init,
        seed=c.seed, new_params_init=new_params_init)
    write_json(out / "loop_config.json", config)
    train_fn = {"sft": sft.train, "rm": reward.train}[trainer]
    metrics = train_fn(config)
    write_json(out / "metrics.json", {k: v for k, v in metrics.items() if k != "params"})

  def _pretrained(self) -> Optional[str]:
    if self.cfg.initial_checkpoint:
      return self.cfg.initial_checkpoint
    return str(self.dir("stages", "pretrain", "model")) if self.synthetic else None

  def _pretrain(self, out):
    c = self.cfg
    self._train(out, "sft", "xlalign_v1.pretrain.multilingual",
                {"inputs": c.input_length, "targets": c.target_length}, c.pretrain_steps,
                c.pretrain_lr, None)

  def _sft(self, out, lang):
    c = self.cfg
    self._train(out, "sft", self.task(lang, "sft"), self.lengths("sft"), c.sft_steps, c.sft_lr,
                self._pretrained())

  def _rate(self, out, lang):
    import xlalign_tasks
    from xlalign_jax.synthetic import model_rows
    c = self.cfg
    policy = generation.Policy(self.sft_checkpoint(lang), c.sample_batch_size, c.mesh_config)
    counts = model_rows.write_model_rows(
        self.data_dir, lang, policy, xlalign_tasks.VOCABULARY, c.model_rows_per_article,
        c.temperature, c.seed, f"sft_{lang}", c.input_length, c.max_decode_length)
    write_json(out / "counts.json", counts)

  def _rm(self, out, lang):
    c = self.cfg
    self._train(out, "rm", self.task(lang, "rm"), self.lengths("rm"), c.rm_steps, c.rm_lr,
                str(self.dir("stages", f"sft_{lang}", "model")), warmup=c.rm_warmup_steps,
                optimizer=self.rm_optimizer, new_params_init=c.rm_head_init,
                eval_period=c.rm_eval_period)

  def sft_checkpoint(self, lang):
    return str(self.dir("stages", f"sft_{lang}", "model"))

  def rm_checkpoint(self, lang):
    return str(self.dir("stages", f"rm_{lang}", "model"))

  # ---- evaluation stages ----
  def _rm_eval(self, out):
    import xlalign_tasks
    entries = rm_eval.evaluate([f"{l}={self.rm_checkpoint(l)}" for l in self.cfg.langs],
                               [self.task(l, "rm") for l in self.cfg.langs],
                               xlalign_tasks.VOCABULARY)
    rm_eval.write(entries, str(out / "rm_accuracy.json"))
    if self.synthetic and self.cfg.dataset == "seahorse" and self.cfg.rm_probe_articles > 0:
      from xlalign_jax.synthetic import rm_probe
      from xlalign_jax.synthetic.oracle import Oracle
      c, world = self.cfg, Oracle.from_data_dir(self.data_dir).world

      def probe(checkpoint, reward):
        return rm_probe.probe_grid({l: checkpoint(l) for l in c.langs}, world, c.langs,
                                   xlalign_tasks.VOCABULARY, c.rm_probe_articles, c.seed,
                                   c.mesh_config, reward=reward)
      write_json(out / "rm_probe.json", {
          "rm_probe": probe(self.rm_checkpoint, True),
          # The same probe by each SFT model's likelihood: what the model an RM starts from knows
          # of each mistake, in its own language and in the others.
          "sft_probe": probe(self.sft_checkpoint, False)})

  def _prompts(self, lang: str) -> List[dict]:
    return generation.prompt_examples(self.task(lang, "prompts"), self.cfg.eval_split,
                                      self.cfg.eval_prompts)

  def _sampling(self, n: int, temperature: float) -> decoding.SamplingConfig:
    return decoding.SamplingConfig(n, self.cfg.max_decode_length, temperature)

  def _bon(self, out, target):
    """Sample n candidates once from the target-language SFT policy; every source RM reranks them.
    Candidate 0 (an ordinary sample) is the SFT baseline the aligned outputs are judged against.
    The policy's greedy output (greedy.jsonl) is judged against it too, for scale: how much lower
    temperature alone gains."""
    import xlalign_tasks
    c = self.cfg
    vocab = xlalign_tasks.VOCABULARY
    prompts = self._prompts(target)
    policy = generation.Policy(self.sft_checkpoint(target), c.sample_batch_size, c.mesh_config)
    samples = policy.generate(vocab, [p["inputs"] for p in prompts],
                              self._sampling(c.bon_n, c.temperature), c.seed, c.input_length)
    rows = [{"id": p.get("id"), "group": data_pipeline.example_group(p, i), "inputs": p["inputs"],
             "candidates": [o["text"] for o in outs], "log_probs": [o["log_prob"] for o in outs]}
            for i, (p, outs) in enumerate(zip(prompts, samples))]
    flat_in = [r["inputs"] for r in rows for _ in r["candidates"]]
    flat_out = [o for r in rows for o in r["candidates"]]
    for source in c.langs:
      scorer = Scorer(self.rm_checkpoint(source), 64, reward=True, mesh_config=c.mesh_config)
      rewards = scorer.score_texts(vocab, flat_in, flat_out).reshape(len(rows), c.bon_n)
      for r, rw in zip(rows, rewards):
        r.setdefault("rewards", {})[source] = [float(x) for x in rw]
        r.setdefault("chosen", {})[source] = int(np.argmax(rw))
    generation.write_jsonl(str(out / "candidates.jsonl"), rows)
    self._write_outputs(out / "greedy.jsonl", policy, prompts, 0.0, c.seed)
    write_json(out / "info.json", {"n": c.bon_n, "kl_bound": best_of_n.kl_bound(c.bon_n),
                                   "policy": self.sft_checkpoint(target)})

  def _ppo(self, out, source, target):
    from xlalign_jax.trainers import ppo
    c = self.cfg
    model_dir = out / "model"
    optimizer = training.OptimizerConfig(c.optimizer, c.ppo_lr)
    config = ppo.PPOConfig(
        model_dir=str(model_dir), train_steps=c.ppo_steps,
        prompts_task=self.task(target, "prompts"),
        task_feature_lengths={"inputs": c.input_length, "targets": c.max_decode_length},
        policy_checkpoint=self.sft_checkpoint(target), reward_checkpoint=self.rm_checkpoint(source),
        mesh_config=c.mesh_config, policy_optimizer=optimizer, value_optimizer=optimizer,
        batch_size=c.ppo_batch_size, seed=c.seed, checkpoint_period=c.checkpoint_period,
        kl_beta=c.ppo_kl_beta, kl_target=c.ppo_kl_target, kl_horizon=c.ppo_kl_horizon,
        reward_normalization=c.ppo_reward_normalization,
        policy_start_step=c.ppo_value_warmup_steps, ppo_epochs=c.ppo_epochs,
        num_minibatches=c.ppo_minibatches, max_kl=c.ppo_max_kl)
    write_json(out / "ppo_config.json", config)
    metrics = ppo.train(config)
    write_json(out / "metrics.json", {k: v for k, v in metrics.items() if k != "params"})
    policy = generation.Policy(str(model_dir), c.sample_batch_size, c.mesh_config)
    self._write_outputs(out / "outputs.jsonl", policy, self._prompts(target), c.temperature,
                        c.seed + 1)

  def _write_outputs(self, path, policy, prompts, temperature, seed):
    """One output of `policy` per prompt, as `xlalign generate` writes them (id, inputs, output),
    for the judge stage."""
    import xlalign_tasks
    outputs = policy.generate(xlalign_tasks.VOCABULARY, [p["inputs"] for p in prompts],
                              self._sampling(1, temperature), seed, self.cfg.input_length)
    generation.write_jsonl(str(path), (
        {"id": p.get("id"), "inputs": p["inputs"], "output": o[0]["text"]}
        for p, o in zip(prompts, outputs)))

  def _judge(self, out):
    from xlalign_jax import judging
    if self.http_judge is not None and self.http_judge.cache_path is None:
      # A stage stopped halfway resumes without paying again for the verdicts it has.
      self.http_judge.use_cache(out / fileio.per_process_name("http_verdicts.jsonl"))
    judging.judge_experiment(self, out)

  def _report(self, out):
    from xlalign_jax import report
    results = json.loads((self.dir("stages", "judge", "results.json")).read_text())
    results["rm_accuracy"] = json.loads(
        self.dir("stages", "rm_eval", "rm_accuracy.json").read_text())["rm_accuracy"]
    probe_file = self.dir("stages", "rm_eval", "rm_probe.json")
    if probe_file.exists():
      results.update(json.loads(probe_file.read_text()))  # rm_probe, sft_probe
    results["ppo_training"] = self._ppo_training()
    results["provenance"] = run_provenance(self.cfg, self.synthetic)
    write_json(self.root / "results.json", results)
    report.write_report(results, str(self.root))


  def _ppo_training(self) -> List[dict]:
    """Each PPO run's reward, KL, response length and entropy over its steps, read back from
    its TensorBoard events."""
    from xlalign_jax import run_history
    rows = []
    for source, target in self.cfg.ppo_pairs:
      log_dir = self.dir("stages", f"ppo_{source}_{target}", "model", "tensorboard")
      try:
        summary = run_history.ppo_summary(run_history.read_scalars(log_dir),
                                          max_kl=self.cfg.ppo_max_kl)
      except ValueError as exc:  # e.g. events deleted: the curves are gone, the results are not
        print(f"note: {log_dir}: {exc}; the report leaves out that PPO run's training curves",
              flush=True)
        continue
      rows.append({"source": source, "target": target, **summary})
    return rows


def run_provenance(cfg: ExperimentConfig, synthetic: bool) -> dict:
  return {"synthetic": synthetic, "seed": cfg.seed, "langs": list(cfg.langs),
          "dataset": cfg.dataset, "versions": provenance.software_versions(),
          "machine": platform.machine(), "config": gin.config_str()}
