"""The judging stage of an experiment: win rates of aligned outputs against the target-language SFT
outputs under every judge, in both orders, with bootstrap CIs; best-of-n's oracle gain over a random
candidate of the same prompt (the mean over its candidates), the ceiling of that gain (the oracle's
own choice) and the gain of a reranker without an RM (the policy's likeliest candidate), how well
each RM orders a prompt's candidates, and what its choices contain; the RM-evaluator score delta;
and agreement between judges.

The SFT baseline of a prompt is candidate 0 of its best-of-n samples: an ordinary sample of the
target-language SFT policy at the same temperature, drawn independently of any reward model.
"""
import functools
import json
import pathlib
from typing import Dict, List

import numpy as np
from scipy import stats as scipy_stats

from xlalign_jax import fileio, judges, stats, winrate
from xlalign_jax.score import Scorer


def bon_oracle_gain(qualities: List[np.ndarray], chosen: List[int]) -> np.ndarray:
  """Per prompt: the oracle quality of the chosen candidate minus the mean over its candidates.

  The mean is a random candidate's expected quality: the exact expectation, with less variance
  than comparing with one drawn candidate."""
  return np.array([q[c] - q.mean() for q, c in zip(qualities, chosen)])


def bon_oracle_ceiling(qualities: List[np.ndarray]) -> np.ndarray:
  """Per prompt: the gain of the oracle's own choice (best minus mean), the most any RM can gain."""
  return np.array([q.max() - q.mean() for q in qualities])


def rank_correlation(rewards: np.ndarray, qualities: np.ndarray) -> float:
  """Spearman's correlation of one prompt's rewards with its candidates' oracle qualities (ties
  get average ranks); NaN where either is constant: no order to agree with."""
  if np.ptp(rewards) > 0 and np.ptp(qualities) > 0:
    return float(np.corrcoef(scipy_stats.rankdata(rewards), scipy_stats.rankdata(qualities))[0, 1])
  return np.nan


def within_prompt_rank_correlation(rewards: List[np.ndarray], qualities: List[np.ndarray]
                                   ) -> np.ndarray:
  """Per prompt: the rank_correlation of the RM's rewards with the oracle's qualities over its
  candidates; prompts without one are left out. More sensitive than the gain, which sees only the
  top."""
  corr = np.array([rank_correlation(r, q) for r, q in zip(rewards, qualities)])
  return corr[np.isfinite(corr)]


PICK_PROFILE_FIELDS = ("sentences", "correct", "wrong", "repeats")
# Prompts per PPO run whose output the report shows beside the SFT sample it is judged against.
PPO_EXAMPLES = 3


def bon_pick_profile(assessments: List[list], chosen: List[int]) -> Dict[str, float]:
  """What the RM picks, in the oracle's reading: the mean number of sentences and of correct,
  wrong and repeated facts of the chosen candidates (`FIELD_pick`) and of all candidates of the
  same prompts (`FIELD_all`). `assessments[i]` are prompt i's oracle Assessments."""
  profile = {}
  for field in PICK_PROFILE_FIELDS:
    counts = [np.array([getattr(a, field) for a in prompt], float) for prompt in assessments]
    profile[f"{field}_pick"] = float(np.mean([c[i] for c, i in zip(counts, chosen)]))
    profile[f"{field}_all"] = float(np.mean([c.mean() for c in counts]))
  return profile


class _TextRewardScorer:
  """Adapts a reward-model Scorer to the judges' `score(lang, inputs, outputs)` protocol."""

  def __init__(self, scorer: Scorer, vocab):
    self.scorer, self.vocab = scorer, vocab

  def score(self, lang, inputs, outputs):
    del lang  # the RM is fixed; its language is the judge's
    return self.scorer.score_texts(self.vocab, inputs, outputs)


def _read_jsonl(path: pathlib.Path) -> List[dict]:
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _judges_for(exp, target: str, oracle, rm_scorers) -> List[judges.Judge]:
  """The configured judges (Experiment has checked that each can run: oracle and sim_llm only on
  the synthetic world)."""
  out = []
  for name in exp.cfg.judges:
    if name == "oracle":
      out.append(judges.OracleJudge(oracle))
    elif name == "sim_llm":
      out.append(judges.SimulatedLLMJudge(oracle, noise=exp.cfg.sim_llm_noise,
                                          position_bias=exp.cfg.sim_llm_position_bias,
                                          seed=exp.cfg.seed))
    elif name == "rm":
      out.append(judges.RMJudge(rm_scorers[target], target))
    elif name == "http":
      out.append(exp.http_judge)
  return out


def _family(judge_name: str) -> str:
  return "rm" if judge_name.startswith("rm:") else judge_name


def _rates(rows: List[dict], family: str) -> Dict[str, float]:
  return {f'{r["method"]}:{r["source"]}>{r["target"]}': r["win_rate"]
          for r in rows if _family(r["judge"]) == family}


def judge_experiment(exp, out: pathlib.Path) -> Dict:
  """Judge every best-of-n pair and PPO run of `exp` (an experiment.Experiment) and, for scale,
  each target SFT policy's greedy output and the likeliest of its samples, against the same
  baseline."""
  import xlalign_tasks
  cfg = exp.cfg
  vocab = xlalign_tasks.VOCABULARY
  oracle = None
  if exp.synthetic:
    from xlalign_jax.synthetic.oracle import Oracle
    oracle = Oracle.from_data_dir(exp.data_dir)
  rm_scorers = {lang: _TextRewardScorer(Scorer(exp.rm_checkpoint(lang), 64, reward=True,
                                               mesh_config=cfg.mesh_config), vocab)
                for lang in cfg.langs}
  results = {"winrates": [], "references": [], "rm_score_delta": [], "bon_oracle_gain": [],
             "bon_pick_profile": [], "ppo_examples": [], "judge_agreement": []}
  probs_by_judge: Dict[str, List[np.ndarray]] = {}

  def judged(target, inputs, aligned, baseline):
    """(judge name, P(aligned is better) in both orders) for each configured judge."""
    return [(judge.name, winrate.order_probs(judge, target, inputs, aligned, baseline))
            for judge in _judges_for(exp, target, oracle, rm_scorers)]

  def judge_reference(name, target, inputs, outputs, baseline, groups):
    for judge_name, probs in judged(target, inputs, outputs, baseline):
      results["references"].append({"reference": name, "target": target, "judge": judge_name,
                                    **winrate.win_rate(probs, groups=groups).as_dict()})

  def judge_all(method, source, target, inputs, aligned, baseline, groups):
    for name, probs in judged(target, inputs, aligned, baseline):
      probs_by_judge.setdefault(_family(name), []).append(probs)
      results["winrates"].append({"method": method, "source": source, "target": target,
                                  "judge": name,
                                  **winrate.win_rate(probs, groups=groups).as_dict()})
    delta = winrate.rm_score_delta(rm_scorers[target], target, inputs, aligned, baseline,
                                   groups=groups)
    results["rm_score_delta"].append({"method": method, "source": source, "target": target,
                                      "judge": f"rm:{target}", **delta.as_dict()})

  for target in cfg.langs:
    rows = _read_jsonl(exp.dir("stages", f"bon_{target}", "candidates.jsonl"))
    inputs = [r["inputs"] for r in rows]
    baseline = [r["candidates"][0] for r in rows]
    # Prompts that share a start (the threads of one message tree) are resampled together. Bon
    # stages of earlier versions kept no groups.
    groups = (stats.repeated_groups([r["group"] for r in rows])
              if all("group" in r for r in rows) else None)
    interval = functools.partial(stats.bootstrap_ci, seed=cfg.seed, groups=groups)
    # The policy's likeliest sample per prompt (bon stages of earlier versions kept no log_probs).
    likeliest = ([int(np.argmax(r["log_probs"])) for r in rows]
                 if all("log_probs" in r for r in rows) else None)
    if oracle is not None:  # per prompt, the oracle's assessment of every candidate
      assessments = [[oracle.assess(target, r["inputs"], c) for c in r["candidates"]]
                     for r in rows]
      qualities = [np.array([a.quality for a in prompt]) for prompt in assessments]
      ceiling = dict(zip(("ceiling", "ceiling_ci_low", "ceiling_ci_high"),
                         interval(bon_oracle_ceiling(qualities))))
      if likeliest is not None:
        ceiling.update(zip(("likeliest", "likeliest_ci_low", "likeliest_ci_high"),
                           interval(bon_oracle_gain(qualities, likeliest))))
    for source in cfg.langs:
      aligned = [r["candidates"][r["chosen"][source]] for r in rows]
      judge_all("bon", source, target, inputs, aligned, baseline, groups)
      if oracle is not None:
        gain = bon_oracle_gain(qualities, [r["chosen"][source] for r in rows])
        point, low, high = interval(gain)
        corr = np.array([rank_correlation(np.array(r["rewards"][source]), q)
                         for r, q in zip(rows, qualities)])
        defined = np.isfinite(corr)
        rank = dict(zip(("rank_corr", "rank_corr_ci_low", "rank_corr_ci_high"),
                        stats.bootstrap_ci(corr[defined], seed=cfg.seed,
                                           groups=None if groups is None else groups[defined])
                        if defined.any() else [np.nan] * 3),
                    rank_corr_n=int(defined.sum()))
        results["bon_oracle_gain"].append({"source": source, "target": target, "delta": point,
                                           "ci_low": low, "ci_high": high, "n": len(gain),
                                           **ceiling, **rank})
        results["bon_pick_profile"].append({
            "source": source, "target": target, "n": len(rows),
            **bon_pick_profile(assessments, [r["chosen"][source] for r in rows])})
    for source, ppo_target in cfg.ppo_pairs:
      if ppo_target != target:
        continue
      ppo_rows = _read_jsonl(exp.dir("stages", f"ppo_{source}_{target}", "outputs.jsonl"))
      by_id = {r["id"]: r["output"] for r in ppo_rows}
      outputs = [by_id[r["id"]] for r in rows]
      judge_all("ppo", source, target, inputs, outputs, baseline, groups)
      for i, (r, output) in enumerate(zip(rows[:PPO_EXAMPLES], outputs)):
        example = {"source": source, "target": target, "id": r["id"], "inputs": r["inputs"],
                   "sft": r["candidates"][0], "ppo": output}
        if oracle is not None:  # the SFT sample, candidate 0, was assessed above
          example.update(sft_quality=float(qualities[i][0]),
                         ppo_quality=oracle.quality(target, r["inputs"], output))
        results["ppo_examples"].append(example)
    # For scale, outputs no RM chose: the policy's greedy one, and the likeliest of its samples.
    greedy_file = exp.dir("stages", f"bon_{target}", "greedy.jsonl")
    if "sft_greedy" in cfg.judge_references:
      if greedy_file.exists():
        by_id = {r["id"]: r["output"] for r in _read_jsonl(greedy_file)}
        judge_reference("sft_greedy", target, inputs, [by_id[r["id"]] for r in rows], baseline,
                        groups)
      else:  # a bon stage finished by an earlier version
        print(f"note: {greedy_file} is missing (an earlier version's bon stage): the report "
              "leaves out its greedy reference; delete that stage and the later ones to get it",
              flush=True)
    if "sft_likeliest" in cfg.judge_references and likeliest is not None:
      judge_reference("sft_likeliest", target, inputs,
                      [r["candidates"][i] for r, i in zip(rows, likeliest)], baseline, groups)

  if "oracle" in probs_by_judge:
    # Instance level: does the judge prefer the same side as the oracle? Ranking level: does it
    # order the (method, source, target) systems as the oracle does?
    gold = np.concatenate(probs_by_judge["oracle"]).mean(axis=1)
    oracle_rates = _rates(results["winrates"], "oracle")
    for name, chunks in probs_by_judge.items():
      if name == "oracle":
        continue
      agree = winrate.instance_agreement(gold, np.concatenate(chunks).mean(axis=1)).as_dict()
      rank = winrate.ranking_agreement(oracle_rates, _rates(results["winrates"], name)).as_dict()
      results["judge_agreement"].append({"judge_a": "oracle", "judge_b": name, "method": "all",
                                         **agree, **rank})
  if exp.http_judge is not None:  # calls without a verdict, by cause (their instances dropped)
    results["judge_failures"] = {exp.http_judge.name: dict(exp.http_judge.failures)}
  fileio.write_text(out / "results.json", json.dumps(results, indent=2))
  return results
