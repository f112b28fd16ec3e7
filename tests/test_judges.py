"""Judges: oracle, RM evaluator (fake scorer), simulated LLM judge, and the HTTP judge against a
chat-completions server that the tests start on 127.0.0.1."""
import json
import logging
import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from scipy import special

from chat_server import ChatServer, chat_response
from synthetic_summaries import summaries
from xlalign_jax import judges
from xlalign_jax.errors import UserError
from xlalign_jax.synthetic.formats import format_dialog_input, format_summarization_input

KEY = "sk-test-SECRET-0123456789"
KEY_ENV = "XLALIGN_TEST_JUDGE_KEY"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  return summaries(tmp_path_factory.mktemp("world"), articles=20)


# ------------------------------------------------------------------------------ oracle judge

def test_oracle_judge_hard_verdicts_and_ties(world):
  oracle, inputs, systems = world
  judge = judges.OracleJudge(oracle)
  assert judge.name == "oracle"
  good, bad = systems["reference"][0], systems["t5_base"][0]  # t5_base writes the wrong language
  assert judge.prefer("es", inputs[0], good, bad) == 1.0
  assert judge.prefer("es", inputs[0], bad, good) == 0.0
  assert judge.prefer("es", inputs[0], good, good) == 0.5


def test_oracle_judge_temperature_is_a_sigmoid_of_the_quality_difference(world):
  oracle, inputs, systems = world
  a, b = systems["palm_1shot"], systems["mt5_small"]
  diff = np.array([oracle.quality("es", x, y) - oracle.quality("es", x, z)
                   for x, y, z in zip(inputs, a, b)])
  probs = judges.OracleJudge(oracle, temperature=0.1).prefer_batch("es", inputs, a, b)
  np.testing.assert_allclose(probs, special.expit(diff / 0.1), rtol=1e-12)
  with pytest.raises(UserError, match="temperature"):
    judges.OracleJudge(oracle, temperature=-1)


def test_prefer_batch_checks_lengths(world):
  oracle, inputs, systems = world
  with pytest.raises(ValueError, match="one length"):
    judges.OracleJudge(oracle).prefer_batch(["es"], inputs, systems["reference"],
                                            systems["t5_base"])


# ------------------------------------------------------------------------------ RM judge

class LengthScorer:
  """A reward model stand-in: the reward is the output's length; records its calls."""

  def __init__(self):
    self.calls = []

  def score(self, lang, inputs, outputs):
    self.calls.append((lang, len(outputs)))
    return np.array([float(len(o)) for o in outputs])


def test_rm_judge_is_bradley_terry_on_rewards_and_scores_each_output_once():
  scorer = LengthScorer()
  judge = judges.RMJudge(scorer, "es")
  assert judge.name == "rm:es"
  a, b = ["aaa", "a", "aa"], ["a", "aaa", "aa"]
  langs = ["es", "es", "ru"]
  probs = judge.prefer_batch(langs + langs, ["x", "y", "z"] * 2, a + b, b + a)
  want = special.expit(np.array([len(p) - len(q) for p, q in zip(a + b, b + a)], float))
  np.testing.assert_allclose(probs, want, rtol=1e-12)
  # es: inputs x, y with two outputs each; ru: input z with one distinct output.
  assert sorted(scorer.calls) == [("es", 4), ("ru", 1)]
  assert judge.prefer("es", "x", "aaaa", "a") == pytest.approx(special.expit(3.0))


def test_rm_judge_rejects_a_scorer_of_the_wrong_shape():
  class Broken:
    def score(self, lang, inputs, outputs):
      return np.zeros(len(outputs) + 1)
  with pytest.raises(ValueError, match="shape"):
    judges.RMJudge(Broken(), "en").prefer("en", "x", "a", "b")


# ------------------------------------------------------------------------------ simulated judge

class LengthOracle:
  """Quality = length / 100, enough for the simulated judge's arithmetic."""

  def quality(self, lang, input_text, output_text):
    return len(output_text) / 100


def test_simulated_judge_position_bias_moves_close_calls_towards_the_first_output():
  judge = judges.SimulatedLLMJudge(LengthOracle(), noise=0.0, position_bias=0.6, temperature=0.1)
  assert judge.name == "sim_llm"
  assert judge.prefer("es", "x", "ab", "cd") == pytest.approx(0.8)  # a tie: (1 + 0.6) / 2
  p = special.expit(0.1)  # one character longer: quality + 0.01, logit 0.1
  assert judge.prefer("es", "x", "abc", "de") == pytest.approx(p + 0.6 * (1 - p))
  assert judge.prefer("es", "x", "de", "abc") == pytest.approx((1 - p) * 1.6)
  unbiased = judges.SimulatedLLMJudge(LengthOracle(), noise=0.0, temperature=0.1)
  assert unbiased.prefer("es", "x", "ab", "cd") == 0.5
  with pytest.raises(UserError, match="position_bias"):
    judges.SimulatedLLMJudge(LengthOracle(), position_bias=2.0)


def test_simulated_judge_noise_is_deterministic_standard_normal():
  judge = judges.SimulatedLLMJudge(LengthOracle(), noise=0.02, temperature=0.01, seed=3)
  outputs = [f"out{i:04d}" for i in range(2000)]  # equal lengths: the logit is 2 * z
  probs = judge.prefer_batch("es", ["x"] * 2000, outputs, outputs[::-1])
  z = special.logit(probs) / 2
  assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1
  again = judges.SimulatedLLMJudge(LengthOracle(), noise=0.02, temperature=0.01, seed=3)
  np.testing.assert_array_equal(again.prefer_batch("es", ["x"] * 2000, outputs, outputs[::-1]),
                                probs)
  other_seed = judges.SimulatedLLMJudge(LengthOracle(), noise=0.02, temperature=0.01, seed=4)
  assert other_seed.prefer("es", "x", "a", "b") != judge.prefer("es", "x", "a", "b")


def test_simulated_judge_is_the_same_in_another_process():
  code = ("from xlalign_jax import judges\n"
          "class O:\n  def quality(self, lang, i, o): return len(o) / 100\n"
          "print(repr(judges.SimulatedLLMJudge(O(), seed=7).prefer('es', 'in', 'aa', 'b')))")
  outs = {subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": str(s)}).stdout for s in (1, 2)}
  here = judges.SimulatedLLMJudge(LengthOracle(), seed=7).prefer("es", "in", "aa", "b")
  assert outs == {repr(here) + "\n"}


# ------------------------------------------------------------------------------ prompts

def test_judge_prompts_by_task():
  summ = format_summarization_input("es", "The article.")
  prompt = judges.judge_prompt(judges.infer_task(summ), "es", summ, "first", "second")
  assert prompt.endswith("Preferred Summary=") and "Summarize" not in prompt
  assert "Spanish" in prompt
  assert prompt.index("The article.") < prompt.index("(1): first") < prompt.index("(2): second")
  dialog = format_dialog_input("ru", [("prompter", "hi there"), ("assistant", "hello"),
                                      ("prompter", "how?")])
  prompt = judges.judge_prompt(judges.infer_task(dialog), "ru", dialog, "one", "two")
  assert prompt.endswith("Better output=") and "Please write one turn" not in prompt
  assert "Human: hi there\nAssistant: hello\nHuman: how?" in prompt and "Russian" in prompt
  with pytest.raises(UserError, match="task="):
    judges.infer_task("some text")
  with pytest.raises(UserError, match="unknown judge task"):
    judges.judge_prompt("qa", "es", summ, "a", "b")


# ------------------------------------------------------------------------------ HTTP judge

@pytest.fixture
def server(monkeypatch):
  monkeypatch.setenv(KEY_ENV, KEY)
  srv = ChatServer()
  yield srv
  srv.close()


def http_judge(base_url, **kwargs):
  kwargs = {"api_key_env": KEY_ENV, "backoff_base": 0.001, "max_attempts": 3, "timeout": 5.0,
            **kwargs}
  return judges.HTTPJudge("judge-model", base_url=base_url, **kwargs)


SUMM = format_summarization_input("es", "Some article text.")


def test_http_judge_reads_logprobs_and_sends_the_key(server):
  server.script = [(200, chat_response("1", {"1": 0.7, " 1": 0.05, "2": 0.2, "Sum": 0.05}), {})]
  judge = http_judge(server.base_url)
  assert judge.name == "http:judge-model"
  assert judge.prefer("es", SUMM, "summary a", "summary b") == pytest.approx(0.75 / 0.95)
  path, headers, request = server.requests[0]
  assert path == "/v1/chat/completions"
  assert headers["Authorization"] == f"Bearer {KEY}"
  assert request["model"] == "judge-model" and request["max_tokens"] == 1
  assert request["temperature"] == 0 and request["logprobs"] is True
  assert request["top_logprobs"] == 5
  prompt = request["messages"][0]["content"]
  assert prompt.endswith("Preferred Summary=") and "(1): summary a" in prompt
  assert not judge.failures


def test_http_judge_parses_the_text_without_logprobs(server):
  server.script = [(200, chat_response("2"), {}), (200, chat_response(" 1"), {})]
  judge = http_judge(server.base_url, logprobs=False)
  dialog = format_dialog_input("en", [("prompter", "hi")])
  assert judge.prefer("en", dialog, "a", "b") == 0.0
  assert judge.prefer("en", SUMM, "a", "b", task="dialog") == 1.0
  requests = [r for _, _, r in server.requests]
  assert all("logprobs" not in r for r in requests)
  assert all(r["messages"][0]["content"].endswith("Better output=") for r in requests)


def test_http_judge_retries_after_429(server):
  server.script = [(429, {"error": "slow down"}, {"Retry-After": "0"}),
                   (200, chat_response("2", {"1": 0.1, "2": 0.9}), {})]
  judge = http_judge(server.base_url)
  assert judge.prefer("es", SUMM, "a", "b") == pytest.approx(0.1)
  assert len(server.requests) == 2 and not judge.failures


def test_http_judge_counts_a_500_after_the_last_attempt_without_leaking_the_key(server, caplog):
  caplog.set_level(logging.DEBUG, logger="xlalign_jax.judges")
  server.respond = lambda request: (500, f"internal error; you sent Bearer {KEY}", {})
  judge = http_judge(server.base_url, max_attempts=3)
  assert math.isnan(judge.prefer("es", SUMM, "a", "b"))
  assert len(server.requests) == 3
  assert judge.failures == {"http_500": 1}
  assert "http_500" in caplog.text and KEY not in caplog.text
  assert KEY not in repr(judge) and KEY not in str(vars(judge))


@pytest.mark.parametrize("reply,reason", [
    ("this is not json", "malformed_response"),
    ({"choices": []}, "malformed_response"),
    ({"choices": [{"message": {}}]}, "malformed_response"),
    (chat_response("Maybe", {"Maybe": 0.9, "The": 0.1}), "unexpected_answer"),
    (chat_response("12"), "unexpected_answer"),
])
def test_http_judge_counts_bad_answers_as_nan(server, reply, reason):
  server.script = [(200, reply, {})]
  judge = http_judge(server.base_url)
  assert math.isnan(judge.prefer("es", SUMM, "a", "b"))
  assert judge.failures == {reason: 1} and len(server.requests) == 1


def test_http_judge_does_not_retry_a_400_and_stops_on_401(server):
  server.script = [(400, {"error": "context too long"}, {}), (401, {"error": "bad key"}, {})]
  judge = http_judge(server.base_url)
  assert math.isnan(judge.prefer("es", SUMM, "a", "b"))
  assert judge.failures == {"http_400": 1}
  with pytest.raises(UserError, match=KEY_ENV) as error:
    judge.prefer("es", SUMM, "a", "b")
  assert KEY not in str(error.value) and len(server.requests) == 2


def test_http_judge_counts_timeouts_and_connection_errors(server):
  server.delay = 0.5
  server.respond = lambda request: (200, chat_response("1"), {})
  judge = http_judge(server.base_url, timeout=0.1, max_attempts=2)
  assert math.isnan(judge.prefer("es", SUMM, "a", "b"))
  assert judge.failures == {"timeout": 1} and len(server.requests) == 2
  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  judge = http_judge(f"http://127.0.0.1:{port}/v1", max_attempts=2)
  assert math.isnan(judge.prefer("es", SUMM, "a", "b"))
  assert judge.failures == {"connection_error": 1}


def test_http_judge_keeps_its_verdicts_and_a_new_one_resumes_from_them(server, tmp_path):
  """A run stopped halfway asks again only what it has no verdict for: not the answered calls,
  and the unanswered ones (not kept) again; a line cut short by a kill is skipped."""
  def respond(request):
    prompt = request["messages"][0]["content"]
    return 200, chat_response("1" if "(1): good" in prompt else "?"), {}
  server.respond = respond
  cache = tmp_path / "verdicts.jsonl"
  firsts = ["good a", "odd", "good b"]
  probs = http_judge(server.base_url, cache_path=str(cache)).prefer_batch(
      "es", [SUMM] * 3, firsts, ["x"] * 3)
  np.testing.assert_array_equal(probs, [1.0, np.nan, 1.0])
  assert len(server.requests) == 3 and len(cache.read_text().splitlines()) == 2
  assert KEY not in cache.read_text()
  cache.write_text(cache.read_text() + '{"request": "cut sh')  # killed mid-write
  judge = http_judge(server.base_url, cache_path=str(cache))
  probs = judge.prefer_batch("es", [SUMM] * 4, firsts + ["good c"], ["x"] * 4)
  np.testing.assert_array_equal(probs, [1.0, np.nan, 1.0, 1.0])
  asked = [r["messages"][0]["content"] for _, _, r in server.requests[3:]]
  assert len(asked) == 2 and {"(1): odd" in a or "(1): good c" in a for a in asked} == {True}
  assert judge.failures == {"unexpected_answer": 1}
  other_model = judges.HTTPJudge("other-model", base_url=server.base_url, api_key_env=KEY_ENV,
                                 cache_path=str(cache))
  assert other_model.prefer("es", SUMM, "good a", "x") == 1.0 and len(server.requests) == 6
  lines = cache.read_text().splitlines()
  assert [json.loads(line)["verdict"] for line in lines if line != '{"request": "cut sh'] == [1.0] * 4


def test_http_judge_batch_runs_concurrently_and_keeps_the_order(server):
  # The answer depends on the first output's text, so order mix-ups would show.
  def respond(request):
    prompt = request["messages"][0]["content"]
    answer = "1" if "(1): good" in prompt else "2" if "(1): bad" in prompt else "?"
    return 200, chat_response(answer), {}
  server.respond = respond
  judge = http_judge(server.base_url, concurrency=4)
  firsts = ["good", "bad", "odd"] * 4
  probs = judge.prefer_batch("es", [SUMM] * 12, firsts, ["x"] * 12)
  np.testing.assert_array_equal(probs, [1.0, 0.0, np.nan] * 4)
  assert judge.failures == {"unexpected_answer": 4}
