"""A whole (tiny) grid through `xlalign run`: every stage runs, results.json / report / plots are
written with CIs, and a re-run skips the finished stages instead of redoing them."""
import dataclasses
import json
import re
import shutil

import numpy as np
import pytest

from chat_server import ChatServer, chat_response
from xlalign_jax import cli

TINY = [
    "ExperimentConfig.langs = ('en', 'es')",
    "ExperimentConfig.ppo_pairs = (('en', 'es'),)",
    "ExperimentConfig.world_sizes = (('articles_per_lang', 60), ('trees_per_lang', 20), "
    "('pretrain_docs_per_lang', 200))",
    "ModelConfig.emb_dim = 32", "ModelConfig.mlp_dim = 64", "ModelConfig.num_heads = 2",
    "ModelConfig.head_dim = 16", "ModelConfig.num_encoder_layers = 1",
    "ModelConfig.num_decoder_layers = 1",
    "ExperimentConfig.input_length = 80", "ExperimentConfig.batch_size = 8",
    "ExperimentConfig.pretrain_steps = 6", "ExperimentConfig.sft_steps = 6",
    "ExperimentConfig.rm_steps = 6", "ExperimentConfig.eval_period = 3",
    "ExperimentConfig.rm_eval_period = 2",
    "ExperimentConfig.checkpoint_period = 3", "ExperimentConfig.bon_n = 4",
    "ExperimentConfig.eval_prompts = 12", "ExperimentConfig.max_decode_length = 12",
    "ExperimentConfig.rm_probe_articles = 16", "ExperimentConfig.model_rows_per_article = 2",
    "ExperimentConfig.sample_batch_size = 4", "ExperimentConfig.ppo_steps = 3",
    "ExperimentConfig.ppo_batch_size = 8", "ExperimentConfig.ppo_value_warmup_steps = 1",
    "ExperimentConfig.ppo_minibatches = 1",  # 8 rows over the 8 fake devices
]


def _run(workdir, capsys, *extra):
  code = cli.main(["run", "experiments/demo.gin", f"--gin.ExperimentConfig.workdir={workdir}",
                   *[f"--gin_bindings={b}" for b in TINY + list(extra)]])
  out = capsys.readouterr()
  assert code == 0, out.err[-3000:]
  return out.out


def _undo(grid, *stages):
  """Marks finished stages as not done, so that the next run redoes them."""
  for stage in stages:
    (grid / "stages" / stage / "DONE").unlink()


def _rerun_without(grid, capsys, path, *stages):
  """Redoes `stages` with `path` (a file or directory of an earlier stage) moved aside, then puts
  it back; returns the run's log."""
  aside = grid / "moved_aside"
  path.rename(aside)
  _undo(grid, *stages)
  try:
    return _run(grid, capsys)
  finally:
    aside.rename(path)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
  return tmp_path_factory.mktemp("grid")


def test_tiny_grid_writes_results_report_and_plots(grid, capsys):
  log = _run(grid, capsys)
  assert "[stage 1/" in log and "report" in log
  assert "## Summary" in log and "cells are above 50% with their interval (judge: oracle)" in log
  results = json.loads((grid / "results.json").read_text())
  bon = [r for r in results["winrates"] if r["method"] == "bon"]
  ppo = [r for r in results["winrates"] if r["method"] == "ppo"]
  assert {(r["source"], r["target"]) for r in bon} == {("en", "en"), ("en", "es"), ("es", "en"),
                                                       ("es", "es")}
  assert {r["judge"] for r in bon} == {"oracle", "sim_llm", "rm:en", "rm:es"}
  assert {(r["source"], r["target"]) for r in ppo} == {("en", "es")}
  # The RM stage evaluates, and picks its checkpoint, at its own period.
  for stage, period in (("sft_en", 3), ("rm_en", 2)):
    assert json.loads((grid / "stages" / stage / "loop_config.json").read_text())[
        "eval_period"] == period
  references = {(r["reference"], r["target"], r["judge"]): r for r in results["references"]}
  assert set(references) == {(ref, t, j) for ref in ("sft_greedy", "sft_likeliest")
                             for t in ("en", "es") for j in ("oracle", "sim_llm", f"rm:{t}")}
  for r in results["winrates"] + results["references"]:
    assert r["n"] == 12 and r["ci_low"] <= r["win_rate"] <= r["ci_high"]
  assert len(results["rm_accuracy"]) == 4
  picks = {(r["source"], r["target"]): r for r in results["bon_pick_profile"]}
  assert set(picks) == {(s, t) for s in ("en", "es") for t in ("en", "es")}
  for t in ("en", "es"):  # the same candidates, whichever RM chose among them
    assert picks[("en", t)]["sentences_all"] == picks[("es", t)]["sentences_all"] > 0
  for r in results["bon_oracle_gain"]:  # no RM's choice beats the oracle's own
    assert r["delta"] <= r["ceiling"] and r["ceiling_ci_low"] <= r["ceiling"] >= 0
    assert -1 <= r["rank_corr_ci_low"] <= r["rank_corr"] <= r["rank_corr_ci_high"] <= 1
    assert 0 < r["rank_corr_n"] <= r["n"]
  # The policy's likeliest candidate, recomputed from the candidates and the oracle.
  from xlalign_jax.synthetic.oracle import Oracle
  oracle = Oracle.from_data_dir(str(grid / "data"))
  for t in ("en", "es"):
    rows = [json.loads(line) for line in
            (grid / "stages" / f"bon_{t}" / "candidates.jsonl").read_text().splitlines()]
    gains = []
    for row in rows:
      q = np.array([oracle.quality(t, row["inputs"], c) for c in row["candidates"]])
      gains.append(q[int(np.argmax(row["log_probs"]))] - q.mean())
    for r in (r for r in results["bon_oracle_gain"] if r["target"] == t):
      assert r["likeliest"] == pytest.approx(np.mean(gains), abs=1e-9)
      assert r["likeliest"] <= r["ceiling"]
      assert r["likeliest_ci_low"] <= r["likeliest"] <= r["likeliest_ci_high"]
    # The references against candidate 0, each prompt a win, a loss or a tie (one half).
    greedy = {r["id"]: r["output"] for r in map(json.loads, (
        grid / "stages" / f"bon_{t}" / "greedy.jsonl").read_text().splitlines())}
    for reference, pick in (("sft_greedy", lambda row: greedy[row["id"]]),
                            ("sft_likeliest",
                             lambda row: row["candidates"][int(np.argmax(row["log_probs"]))])):
      signs = [np.sign(oracle.quality(t, row["inputs"], pick(row))
                       - oracle.quality(t, row["inputs"], row["candidates"][0])) for row in rows]
      assert references[(reference, t, "oracle")]["win_rate"] == pytest.approx(
          (np.mean(signs) + 1) / 2)
  for r in results["rm_accuracy"]:  # pointwise Seahorse labels: paired differences and AUC
    assert r["vs_length_ci_low"] <= r["accuracy"] - r["length_baseline"] <= r["vs_length_ci_high"]
    assert 0 <= r["auc_ci_low"] <= r["auc"] <= r["auc_ci_high"] <= 1
  probe = {(r["source"], r["target"], r["kind"]) for r in results["rm_probe"]}
  assert {(s, t) for s, t, _ in probe} == {("en", "en"), ("en", "es"), ("es", "en"), ("es", "es")}
  assert all(0 <= r["ci_low"] <= r["prefers_reference"] <= r["ci_high"] <= 1
             for r in results["rm_probe"])
  # The SFT models' probe is scored by likelihood, which falls with every added token: whatever
  # the (barely trained) model knows, the longer copy loses and the shorter one wins.
  sft_probe = {(r["source"], r["target"], r["kind"]): r for r in results["sft_probe"]}
  assert {(s, t) for s, t, _ in sft_probe} == {(s, t) for s, t, _ in probe}
  for s in ("en", "es"):
    for t in ("en", "es"):
      assert sft_probe[(s, t, "repetition")]["prefers_reference"] == 1.0
      assert sft_probe[(s, t, "omission")]["prefers_reference"] == 0.0
  assert results["provenance"]["synthetic"] is True
  report = (grid / "report.md").read_text()
  assert "synthetic" in report.lower() and "| en |" in report
  assert "## What each reward model notices" in report and "### Ranking: ROC AUC" in report
  assert "### What each SFT model's likelihood notices" in report and "| SFT → articles |" in report
  assert "## What best-of-n picks" in report and "what a perfect RM would gain" in report
  assert "the candidate the policy itself finds likeliest" in report
  assert list((grid / "plots").glob("*.png")) or list(grid.rglob("*.png"))
  # Each SFT policy's rated summaries are in its language's RM data (train and validation).
  from xlalign_jax.data import seahorse as seahorse_data
  for lang in ("en", "es"):
    counts = json.loads((grid / "stages" / f"rate_{lang}" / "counts.json").read_text())
    for split in ("train", "validation"):
      rated = seahorse_data.load(str(grid / "data" / "seahorse"), split).rated(lang)
      mine = [r for r, _ in rated if r.model == f"sft_{lang}"]
      assert len(mine) == counts[f"{split}.sft_{lang}.tsv"]["yes"] + counts[
          f"{split}.sft_{lang}.tsv"]["no"] > 0
  for stage in ("data", "pretrain", "sft_en", "rate_es", "rm_es", "bon_es", "ppo_en_es", "judge"):
    assert (grid / "stages" / stage / "DONE").exists()
    assert (grid / "stages" / stage / "stage_config.json").exists()
  # PPO's per-step metrics, read back from its TensorBoard events: the last step is the one the
  # trainer returned (metrics.json), and the report shows them.
  training, = results["ppo_training"]
  final = json.loads((grid / "stages" / "ppo_en_es" / "metrics.json").read_text())
  assert (training["source"], training["target"], training["steps"]) == ("en", "es", 3)
  assert training["curves"]["step"] == [1, 2, 3]
  for metric in ("reward", "kl", "response_length", "entropy"):
    assert training["curves"][metric][-1] == np.float32(final[metric])
    assert training[f"{metric}_last"] == pytest.approx(np.mean(training["curves"][metric]))
  assert "## PPO training" in report and "| en → es | 3 |" in report
  assert (grid / "plots" / "ppo_training.png").exists()
  # Its first outputs beside the SFT samples they are judged against, graded by the oracle.
  ppo_out = {r["id"]: r["output"] for r in map(json.loads, (
      grid / "stages" / "ppo_en_es" / "outputs.jsonl").read_text().splitlines())}
  bon_es = [json.loads(line) for line in
            (grid / "stages" / "bon_es" / "candidates.jsonl").read_text().splitlines()]
  examples = results["ppo_examples"]
  assert [e["id"] for e in examples] == [r["id"] for r in bon_es[:3]]
  for e, row in zip(examples, bon_es):
    assert (e["source"], e["target"], e["sft"], e["ppo"]) == (
        "en", "es", row["candidates"][0], ppo_out[row["id"]])
    assert e["ppo_quality"] == oracle.quality("es", row["inputs"], e["ppo"])
    assert e["sft_quality"] == oracle.quality("es", row["inputs"], e["sft"])
  assert "### What PPO writes" in report


def test_compare_lines_up_the_grid_with_another_run_of_it(grid, tmp_path, capsys):
  """`xlalign compare` on real results: the grid, and a copy of it with another rm_lr and one
  win rate lifted above 50%, side by side under the oracle."""
  results = json.loads((grid / "results.json").read_text())
  other = json.loads(json.dumps(results))
  other["provenance"]["config"] = other["provenance"]["config"].replace(
      "ExperimentConfig.rm_lr = 0.0001", "ExperimentConfig.rm_lr = 0.0003")
  lifted = next(r for r in other["winrates"] if r["judge"] == "oracle" and r["method"] == "ppo")
  lifted.update(win_rate=0.7, ci_low=0.6, ci_high=0.8)
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "results.json").write_text(json.dumps(other))
  assert cli.main(["compare", str(grid), str(tmp_path / "other"),
                   "--output", str(tmp_path / "cmp")]) == 0
  capsys.readouterr()
  comparison = json.loads((tmp_path / "cmp" / "compare.json").read_text())
  assert comparison["runs"] == ["seed 0, en/es, rm_lr=0.0001", "seed 0, en/es, rm_lr=0.0003"]
  oracle = [r for r in results["winrates"] if r["judge"] == "oracle"]
  assert len(comparison["winrates"]) == len(oracle)
  for cell in comparison["winrates"]:
    mine, theirs = (cell["runs"][label] for label in comparison["runs"])
    (original,) = [r for r in oracle if (r["method"], r["source"], r["target"])
                   == (cell["method"], cell["source"], cell["target"])]
    assert mine == original
    expected_above = int(original["ci_low"] > 0.5) + int(theirs["ci_low"] > 0.5)
    assert cell["runs_above_50"] == expected_above and cell["runs_with_cell"] == 2
  assert [(g["source"], g["target"], g["runs"]["seed 0, en/es, rm_lr=0.0001"])
          for g in comparison["bon_oracle_gain"]] == [
              (g["source"], g["target"], g) for g in sorted(
                  results["bon_oracle_gain"], key=lambda g: (g["source"], g["target"]))]
  ppo_cell = next(c for c in comparison["winrates"] if c["method"] == "ppo")
  assert ppo_cell["runs"]["seed 0, en/es, rm_lr=0.0003"]["win_rate"] == 0.7


def test_rm_probe_cli_scores_an_sft_model_by_likelihood(grid, capsys):
  """`xlalign rm-probe --loglik` on the grid's es SFT model gives the grid's sft_probe rows."""
  sft = str(grid / "stages" / "sft_es" / "model")
  base = ["rm-probe", "--checkpoint", sft, "--data_dir", str(grid / "data"), "--lang", "es",
          "--articles", "16", "--output", str(grid / "probe.json")]
  assert cli.main(base + ["--loglik"]) == 0
  capsys.readouterr()
  rows = json.loads((grid / "probe.json").read_text())["rm_probe"]
  expected = [r for r in json.loads((grid / "results.json").read_text())["sft_probe"]
              if r["source"] == r["target"] == "es"]
  assert [{**r, "source": "es"} for r in rows] == expected
  assert cli.main(base) != 0  # without --loglik it wants a reward head
  err = capsys.readouterr().err
  assert "has no reward head" in err and "Traceback" not in err


def test_rerun_skips_finished_stages(grid, capsys):
  _undo(grid, "report")
  sft_marker = grid / "stages" / "sft_en" / "DONE"
  before = sft_marker.stat().st_mtime_ns
  log = _run(grid, capsys)
  assert "sft_en: done earlier, skipped" in log
  assert "ppo_en_es: done earlier, skipped" in log
  assert sft_marker.stat().st_mtime_ns == before
  assert (grid / "stages" / "report" / "DONE").exists()


@pytest.mark.parametrize("binding, message", [
    ("ExperimentConfig.rm_steps = 7", "stage rm_en in {grid} finished with rm_steps=6 (now 7)"),
    ("ExperimentConfig.model_rows_per_article = 0",  # no rate stages now; the RMs read their rows
     "stage rm_en in {grid} finished with model_rows_per_article=2 (now 0)"),
    ("ExperimentConfig.judges = ('oracle',)",
     "stage judge in {grid} finished with judges=['oracle', 'rm', 'sim_llm'] (now ['oracle'])"),
])
def test_rerun_with_another_config_is_refused(grid, capsys, binding, message):
  """Finished stages of another configuration would be skipped and mix two runs' results."""
  report = (grid / "report.md").stat().st_mtime_ns
  code = cli.main(["run", "experiments/demo.gin", f"--gin.ExperimentConfig.workdir={grid}",
                   *[f"--gin_bindings={b}" for b in TINY + [binding]]])
  err = capsys.readouterr().err.strip().splitlines()
  assert code != 0 and len(err) == 1 and message.format(grid=grid) in err[0]
  assert (grid / "report.md").stat().st_mtime_ns == report


def test_every_config_field_is_checked_on_rerun_or_named_neutral():
  from xlalign_jax import experiment
  fields = {f.name for f in dataclasses.fields(experiment.ExperimentConfig)}
  checked = set().union(*experiment.STAGE_FIELDS.values())
  assert checked <= fields
  assert fields - checked == set(experiment.RESULT_NEUTRAL_FIELDS)


def test_ppo_max_kl_changes_no_result_and_the_report_counts_the_steps_above_it(grid, capsys):
  """ppo_max_kl is result-neutral: a finished grid re-runs only its report with another bound.
  Counted against the KL curve: all 3 steps above its minimum minus 1, none above its maximum."""
  curve = json.loads((grid / "results.json").read_text())["ppo_training"][0]["curves"]["kl"]
  for bound, above in ((min(curve) - 1, 3), (max(curve), 0)):
    _undo(grid, "report")
    log = _run(grid, capsys, f"ExperimentConfig.ppo_max_kl = {bound!r}")
    assert "ppo_en_es: done earlier, skipped" in log
    training, = json.loads((grid / "results.json").read_text())["ppo_training"]
    assert (training["max_kl"], training["steps_above_max_kl"]) == (bound, above)
    assert f"steps with KL > {bound:g}" in (grid / "report.md").read_text()


def test_ppo_kl_target_adapts_the_penalty_and_the_report_shows_it(grid, capsys):
  """The grid's PPO stage redone with a KL target: PPOConfig gets it, the coefficient moves from
  ppo_kl_beta, and the PPO table shows it; then the grid is put back as it was."""
  stage = grid / "stages" / "ppo_en_es"
  aside = grid / "ppo_aside"
  stage.rename(aside)
  _undo(grid, "judge", "report")
  try:
    log = _run(grid, capsys, "ExperimentConfig.ppo_kl_target = 0.5",
               "ExperimentConfig.ppo_kl_horizon = 10")
    assert "[stage" in log and "ppo_en_es: done earlier" not in log
    config = json.loads((stage / "ppo_config.json").read_text())
    assert (config["kl_target"], config["kl_horizon"], config["kl_beta"]) == (0.5, 10, 0.1)
    training, = json.loads((grid / "results.json").read_text())["ppo_training"]
    beta = training["curves"]["kl_beta"]  # held during the one warm-up step, then adapted
    assert beta[:2] == pytest.approx([0.1, 0.1]) and beta[2] != pytest.approx(0.1)
    assert "KL coefficient β" in (grid / "report.md").read_text()
  finally:
    shutil.rmtree(stage, ignore_errors=True)
    aside.rename(stage)
    _undo(grid, "judge", "report")
    _run(grid, capsys)


def test_a_ppo_run_without_its_tensorboard_events_is_named_and_left_out(grid, capsys):
  events = grid / "stages" / "ppo_en_es" / "model" / "tensorboard"
  log = _rerun_without(grid, capsys, events, "report")
  assert f"note: {events}: no per-step reward, kl, response_length, entropy" in log
  results = json.loads((grid / "results.json").read_text())
  assert results["ppo_training"] == [] and results["ppo_examples"]
  assert "## PPO training" in (grid / "report.md").read_text()  # the examples are still shown


def test_an_http_llm_judge_in_the_grid(grid, capsys, monkeypatch):
  """The judge stage asks an OpenAI-compatible endpoint (one on 127.0.0.1 that prefers the longer
  summary and cannot answer for one es article) in both orders: its win rates are the length
  rule's, computed here from the stages' outputs, and the unanswered article is left out and
  counted, not scored as a tie."""
  monkeypatch.setenv("XLALIGN_TEST_JUDGE_KEY", "sk-test-key")
  from xlalign_jax.synthetic import formats
  read = lambda path: [json.loads(line) for line in path.read_text().splitlines()]
  bon = {t: read(grid / "stages" / f"bon_{t}" / "candidates.jsonl") for t in ("en", "es")}
  ppo = {r["id"]: r["output"] for r in read(grid / "stages" / "ppo_en_es" / "outputs.jsonl")}
  unanswerable = formats.parse_summarization_input(bon["es"][0]["inputs"])
  prompt = re.compile(r"Text: (.*)\n\nSummary \(1\): (.*)\n\nSummary \(2\): (.*)\n\nReply", re.S)

  def respond(request):
    text, first, second = prompt.search(request["messages"][0]["content"]).groups()
    answer = "maybe" if text == unanswerable else "2" if len(second) > len(first) else "1"
    return 200, chat_response(answer), {}

  server = ChatServer()
  server.respond, server.MAX_REQUESTS = respond, 1000
  _undo(grid, "judge", "report")
  http = ["ExperimentConfig.judges = ('oracle', 'http')",
          f"ExperimentConfig.http_judge = (('model', 'judge-model'), ('base_url', "
          f"'{server.base_url}'), ('api_key_env', 'XLALIGN_TEST_JUDGE_KEY'), ('logprobs', False))"]
  try:
    _run(grid, capsys, *http)
    asked = len(server.requests)
    # The stage again, as after a kill: the verdicts it kept are not asked for again (the 10 calls
    # without one are), and the results are the same.
    first = json.loads((grid / "results.json").read_text())
    _undo(grid, "judge", "report")
    _run(grid, capsys, *http)
  finally:
    server.close()
  assert len(server.requests) == asked + 10
  assert server.requests[0][1]["Authorization"] == "Bearer sk-test-key"
  results = json.loads((grid / "results.json").read_text())
  assert results["winrates"] == first["winrates"]
  assert results["references"] == first["references"]
  rows = [r for r in results["winrates"] if r["judge"] == "http:judge-model"]
  assert len(rows) == 5  # 4 best-of-n pairs and PPO en -> es
  for r in rows:
    prompts = bon[r["target"]]
    aligned = ([p["candidates"][p["chosen"][r["source"]]] for p in prompts] if r["method"] == "bon"
               else [ppo[p["id"]] for p in prompts])
    longer = [np.sign(len(a) - len(p["candidates"][0])) / 2 + 0.5 for a, p in zip(aligned, prompts)
              if formats.parse_summarization_input(p["inputs"]) != unanswerable]
    assert r["win_rate"] == pytest.approx(np.mean(longer), abs=1e-12)
    assert (r["n"], r["dropped"]) == (len(longer), int(r["target"] == "es"))
  references = [r for r in results["references"] if r["judge"] == "http:judge-model"]
  assert sorted((r["reference"], r["target"], r["dropped"]) for r in references) == [
      ("sft_greedy", "en", 0), ("sft_greedy", "es", 1), ("sft_likeliest", "en", 0),
      ("sft_likeliest", "es", 1)]
  # Five es systems (two best-of-n, PPO, the two references) x both orders asked about the
  # unanswerable article.
  assert results["judge_failures"] == {"http:judge-model": {"unexpected_answer": 10}}
  assert "instances got no verdict in both orders" in (grid / "report.md").read_text()


def test_judge_references_choose_which_references_are_judged(grid, capsys):
  """Each reference costs a paid judge one more system per target: judge_references picks them,
  and the ones kept come out as in the full run."""
  before = json.loads((grid / "results.json").read_text())
  _undo(grid, "judge", "report")
  _run(grid, capsys, "ExperimentConfig.judge_references = ('sft_likeliest',)")
  results = json.loads((grid / "results.json").read_text())
  oracle = lambda rows: [r for r in rows if r["judge"] == "oracle"]  # in both runs' judges
  assert {r["reference"] for r in results["references"]} == {"sft_likeliest"}
  kept = [r for r in oracle(before["references"]) if r["reference"] == "sft_likeliest"]
  assert len(kept) == 2 and oracle(results["references"]) == kept
  assert oracle(results["winrates"]) == oracle(before["winrates"])
  assert "greedy output" not in (grid / "report.md").read_text()


def test_prompts_that_share_a_group_are_resampled_together(grid, capsys):
  """Dialog threads of one message tree share their start: the judge stage's intervals resample
  the groups that the bon stage recorded, and leave the point estimates alone."""
  before = json.loads((grid / "results.json").read_text())
  candidates = grid / "stages" / "bon_es" / "candidates.jsonl"
  original = candidates.read_text()
  rows = [json.loads(line) for line in original.splitlines()]
  assert [r["group"] for r in rows] == [r["id"] for r in rows]  # Seahorse: an article each
  for i, r in enumerate(rows):
    r["group"] = f"tree-{i // 4}"
  candidates.write_text("".join(json.dumps(r) + "\n" for r in rows))
  _undo(grid, "judge", "report")
  try:
    _run(grid, capsys)
    grouped = json.loads((grid / "results.json").read_text())
  finally:
    candidates.write_text(original)
    _undo(grid, "judge", "report")
    _run(grid, capsys)
  assert json.loads((grid / "results.json").read_text())["winrates"] == before["winrates"]
  for key in ("winrates", "bon_oracle_gain", "rm_score_delta"):
    old = {json.dumps({k: v for k, v in r.items() if "ci_" not in k}): r for r in before[key]}
    new = {json.dumps({k: v for k, v in r.items() if "ci_" not in k}): r for r in grouped[key]}
    assert old.keys() == new.keys(), key  # the same estimates
    changed = {r["target"] for k, r in new.items() if r["ci_low"] != old[k]["ci_low"]}
    assert changed and changed <= {"es"}, key
  # Recomputed: the es RM's oracle gain per prompt, resampled four prompts at a time.
  from xlalign_jax import stats
  from xlalign_jax.synthetic.oracle import Oracle
  oracle = Oracle.from_data_dir(str(grid / "data"))
  gains = []
  for r in rows:
    quality = np.array([oracle.quality("es", r["inputs"], c) for c in r["candidates"]])
    gains.append(quality[r["chosen"]["es"]] - quality.mean())
  row = next(r for r in grouped["bon_oracle_gain"] if (r["source"], r["target"]) == ("es", "es"))
  assert [row["delta"], row["ci_low"], row["ci_high"]] == pytest.approx(
      stats.bootstrap_ci(gains, groups=[r["group"] for r in rows]))


def test_a_bon_stage_without_greedy_outputs_is_named_and_its_reference_left_out(grid, capsys):
  """A bon stage an earlier version finished has no greedy.jsonl: the judge stage says so and
  reports the other references, instead of failing or leaving it out silently."""
  greedy = grid / "stages" / "bon_es" / "greedy.jsonl"
  log = _rerun_without(grid, capsys, greedy, "judge", "report")
  assert f"note: {greedy} is missing" in log
  results = json.loads((grid / "results.json").read_text())
  assert {(r["reference"], r["target"]) for r in results["references"]} == {
      ("sft_greedy", "en"), ("sft_likeliest", "en"), ("sft_likeliest", "es")}


def test_real_data_runs_from_a_given_checkpoint_with_judges_that_need_no_oracle(grid, tmp_path,
                                                                                capsys):
  """The path of the real-run experiments (seahorse_xl.gin): tasks read ExperimentConfig.data_dir,
  SFT starts from ExperimentConfig.initial_checkpoint, and there is no data or pretraining stage
  and no oracle. Here the tiny grid's world stands in for real data, its pretrained model for a
  converted mT5."""
  real, start = tmp_path / "real", grid / "stages" / "pretrain" / "model"
  log = _run(real, capsys, f"ExperimentConfig.data_dir = '{grid / 'data'}'",
             f"ExperimentConfig.initial_checkpoint = '{start}'", "ExperimentConfig.judges = ('rm',)",
             "ExperimentConfig.model_rows_per_article = 0")
  assert "[stage 1/" in log and "report" in log
  stages = sorted(p.name for p in (real / "stages").iterdir())
  assert "data" not in stages and "pretrain" not in stages and "judge" in stages
  for lang in ("en", "es"):
    settings = json.loads((real / "stages" / f"sft_{lang}" / "model" / "run_settings.json")
                          .read_text())
    assert settings["initial_checkpoint_path"] == str(start)
  results = json.loads((real / "results.json").read_text())
  assert {(r["method"], r["source"], r["target"], r["judge"]) for r in results["winrates"]} == (
      {("bon", s, t, f"rm:{t}") for s in ("en", "es") for t in ("en", "es")}
      | {("ppo", "en", "es", "rm:es")})
  assert len(results["rm_accuracy"]) == 4 and not results["bon_oracle_gain"]
  assert "## Win rates against the target-language SFT model" in (real / "report.md").read_text()


@pytest.mark.parametrize("bindings, message", [
    (["ExperimentConfig.judges = ('oracle', 'gpt')"], "unknown judge 'gpt'"),
    (["ExperimentConfig.langs = ('en', 'xx')"],
     "unknown language code 'xx'; known: de, en, es, ru, tr, vi"),
    (["ExperimentConfig.langs = ('en', 'es', 'en')"], "('en', 'es', 'en') names en twice"),
    (["ExperimentConfig.data_dir = '/data/seahorse'", "ExperimentConfig.langs = ('en', 'xx')"],
     "no seqio task xlalign_v1.seahorse.xx.sft for ExperimentConfig.langs ('en', 'xx'); "
     "seahorse has tasks for de, en, es, ru, tr, vi"),
    (["ExperimentConfig.judge_references = ('sft_sampled',)"],
     "unknown reference 'sft_sampled' in ExperimentConfig.judge_references; known: sft_greedy, "
     "sft_likeliest"),
    (["ExperimentConfig.judges = ('http',)"],
     "judge 'http' needs ExperimentConfig.http_judge with a 'model'"),
    (["ExperimentConfig.judges = ('http',)",
      "ExperimentConfig.http_judge = (('model', 'm'), ('temperature', 0))"],
     "got ['model', 'temperature']"),
    (["ExperimentConfig.data_dir = '/data/seahorse'"],
     "judge 'oracle' needs the synthetic world's oracle"),
    (["ExperimentConfig.temperature = -0.7"], "temperature must be >= 0 (0 = greedy), got -0.7"),
    (["ExperimentConfig.ppo_minibatches = 3"], "ppo_batch_size 32 does not split into "
                                               "ppo_minibatches=3"),
    (["ExperimentConfig.rm_steps = 0"], "ExperimentConfig.rm_steps must be at least 1, got 0"),
    (["ExperimentConfig.rm_eval_period = 0"],
     "ExperimentConfig.rm_eval_period must be at least 1, got 0"),
    (["ExperimentConfig.optimizer = 'sgd'"], "unknown optimizer 'sgd'"),
    (["ExperimentConfig.rm_optimizer = 'sgd'"], "unknown optimizer 'sgd'"),
    (["ExperimentConfig.rm_optimizer = 'adafactor'"],
     "ExperimentConfig.rm_head_init 'zeros' needs AdamW"),
    (["ExperimentConfig.rm_head_init = 'ones'"],
     "ExperimentConfig.rm_head_init 'ones' is not one of random, zeros"),
    (["ExperimentConfig.ppo_reward_normalization = 'whiten'"],
     "ExperimentConfig.ppo_reward_normalization must be one of ('none', 'running', 'batch'), "
     "got 'whiten'"),
    (["ExperimentConfig.eval_split = 'dev'"], "seahorse has splits train, validation, test"),
    (["ExperimentConfig.data_dir = '/data/seahorse'", "ExperimentConfig.judges = ('rm',)"],
     "ExperimentConfig.initial_checkpoint is needed with real data"),
])
def test_settings_are_checked_before_any_stage(tmp_path, capsys, bindings, message):
  code = cli.main(["run", "experiments/demo.gin", f"--gin.ExperimentConfig.workdir={tmp_path}",
                   *[f"--gin_bindings={b}" for b in bindings]])
  err = capsys.readouterr().err
  assert code != 0 and message in err and "Traceback" not in err
  assert not (tmp_path / "stages").exists()


def test_model_rows_need_the_synthetic_seahorse_world(tmp_path, capsys):
  code = cli.main(["run", "experiments/demo.gin", f"--gin.ExperimentConfig.workdir={tmp_path}",
                   "--gin_bindings=ExperimentConfig.dataset = 'oasst'",
                   "--gin_bindings=ExperimentConfig.model_rows_per_article = 4"])
  err = capsys.readouterr().err
  assert code != 0 and "model_rows_per_article needs the synthetic world's Seahorse" in err
  assert "Traceback" not in err
