"""Pairwise judges: P(output a is better than output b) for one task input.

Every judge has a `name` (as written in results.json) and one interface:

  judge.prefer(lang, input_text, output_a, output_b) -> float in [0, 1], or NaN when no verdict
  judge.prefer_batch(langs, inputs, outputs_a, outputs_b) -> [N] array

  OracleJudge(oracle)                  "oracle"        the synthetic world's true quality (gold)
  RMJudge(scorer, lang)                "rm:<lang>"     Bradley-Terry on a reward model's scores
  SimulatedLLMJudge(oracle, ...)       "sim_llm"       oracle + noise + first-position bias
  HTTPJudge(model, base_url, ...)      "http:<model>"  an OpenAI-compatible chat-completions LLM

`output_a` is the one shown first. A judge may be position-biased; winrate.py asks in both orders
and averages. NaN means "no verdict" (an HTTP judge that got no usable answer) and is dropped and
counted by the win-rate code, never turned into a tie.
"""
import abc
import collections
import concurrent.futures
import hashlib
import http.client
import json
import logging
import math
import os
import re
import statistics
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Protocol, Sequence, Union

import numpy as np
from scipy import special

from xlalign_jax.errors import UserError
from xlalign_jax.synthetic import formats

log = logging.getLogger(__name__)

Langs = Union[str, Sequence[str]]


class RewardScorer(Protocol):
  """What RMJudge needs from a reward model: one scalar reward per (input, output)."""

  def score(self, lang: str, inputs: List[str], outputs: List[str]) -> np.ndarray:
    ...


def _broadcast_langs(langs: Langs, n: int) -> List[str]:
  return [langs] * n if isinstance(langs, str) else list(langs)


def _check_batch(langs: Langs, inputs, outputs_a, outputs_b) -> List[str]:
  langs = _broadcast_langs(langs, len(inputs))
  lengths = {len(langs), len(inputs), len(outputs_a), len(outputs_b)}
  if len(lengths) != 1:
    raise ValueError(f"langs, inputs, outputs_a and outputs_b need one length, got "
                     f"{len(langs)}, {len(inputs)}, {len(outputs_a)}, {len(outputs_b)}")
  return langs


def _preference(diff: float, temperature: float) -> float:
  """sigmoid(diff / temperature); temperature 0 gives a hard verdict, exactly 0.5 on a tie."""
  if temperature == 0:
    return 0.5 if diff == 0 else float(diff > 0)
  return float(special.expit(diff / temperature))


class Judge(abc.ABC):
  """P(a is better than b), a shown first."""
  name: str

  @abc.abstractmethod
  def prefer(self, lang: str, input_text: str, output_a: str, output_b: str) -> float:
    """P(output_a is better than output_b) for `input_text` in language `lang`, or NaN."""

  def prefer_batch(self, langs: Langs, inputs: Sequence[str], outputs_a: Sequence[str],
                   outputs_b: Sequence[str]) -> np.ndarray:
    """prefer() for each instance; `langs` may be one code for all."""
    langs = _check_batch(langs, inputs, outputs_a, outputs_b)
    return np.array([self.prefer(*args) for args in zip(langs, inputs, outputs_a, outputs_b)],
                    dtype=np.float64)

  def __repr__(self):
    return f"{type(self).__name__}(name={self.name!r})"


class OracleJudge(Judge):
  """The gold judge: compares the synthetic world's true quality of the two outputs.

  P = sigmoid((q_a - q_b) / temperature). The default temperature 0 is a hard verdict (1 if a is
  truly better, 0 if worse, exactly 0.5 on equal quality), so its win rate is the share of instances
  the aligned output truly wins, ties counting half. The oracle is symmetric: no position bias.
  """
  name = "oracle"

  def __init__(self, oracle, temperature: float = 0.0):
    if temperature < 0:
      raise UserError(f"oracle judge temperature must be >= 0, got {temperature}")
    self.oracle = oracle
    self.temperature = temperature

  def prefer(self, lang, input_text, output_a, output_b):
    diff = (self.oracle.quality(lang, input_text, output_a)
            - self.oracle.quality(lang, input_text, output_b))
    return _preference(diff, self.temperature)


class RMJudge(Judge):
  """A reward model as evaluator: P = sigmoid(r_a - r_b), the Bradley-Terry probability.

  `lang` is the language the RM was trained on (the paper uses a target-language RM); the instance
  language is passed on to the scorer. A batch scores each distinct (lang, input, output) once, so
  asking in both orders costs no extra RM calls.
  """

  def __init__(self, scorer: RewardScorer, lang: str):
    self.scorer = scorer
    self.lang = lang
    self.name = f"rm:{lang}"

  def prefer(self, lang, input_text, output_a, output_b):
    return float(self.prefer_batch([lang], [input_text], [output_a], [output_b])[0])

  def prefer_batch(self, langs, inputs, outputs_a, outputs_b):
    langs = _check_batch(langs, inputs, outputs_a, outputs_b)
    keys_a = list(zip(langs, inputs, outputs_a))
    keys_b = list(zip(langs, inputs, outputs_b))
    by_lang: Dict[str, List] = collections.defaultdict(list)
    for key in dict.fromkeys(keys_a + keys_b):  # distinct, in first-seen order
      by_lang[key[0]].append(key)
    rewards = {}
    for lang, keys in by_lang.items():
      scores = np.asarray(self.scorer.score(lang, [k[1] for k in keys], [k[2] for k in keys]),
                          dtype=np.float64)
      if scores.shape != (len(keys),):
        raise ValueError(f"scorer returned shape {scores.shape} for {len(keys)} outputs")
      rewards.update(zip(keys, scores))
    diff = np.array([rewards[a] - rewards[b] for a, b in zip(keys_a, keys_b)], dtype=np.float64)
    return special.expit(diff)


def _hash_normal(*parts: str) -> float:
  """A standard-normal draw fixed by `parts`: the same in every process (hashlib, not hash())."""
  digest = hashlib.sha256("\0".join(parts).encode("utf-8")).digest()
  uniform = (int.from_bytes(digest[:8], "little") + 0.5) / 2.0**64  # in (0, 1)
  return statistics.NormalDist().inv_cdf(uniform)


class SimulatedLLMJudge(Judge):
  """A stand-in for an LLM judge: a noisy oracle that leans towards the output shown first.

  The unbiased verdict is P_u = sigmoid((q_a - q_b + noise * z) / temperature), where z is a
  standard-normal draw fixed by (seed, lang, input, a, b): reproducible in any process, independent
  between the two orders of a pair. `noise` is in quality units (quality is in [0, 1]).

  The position bias moves P_u towards "the first is better" by `position_bias` times its distance
  from the nearer certainty: P = P_u + position_bias * min(P_u, 1 - P_u). Two equally good outputs
  get P = (1 + position_bias) / 2, confident verdicts hardly move, and close calls flip, as with
  real LLM judges. Because the shift depends only on how close the call is, it cancels in
  expectation when both orders are averaged: the averaged win rate is that of the unbiased judge.
  A negative position_bias (down to -1) favours the second output.
  """
  name = "sim_llm"

  def __init__(self, oracle, noise: float = 0.05, position_bias: float = 0.0,
               temperature: float = 0.05, seed: int = 0):
    if noise < 0 or temperature <= 0 or not -1 <= position_bias <= 1:
      raise UserError(f"simulated judge needs noise >= 0, temperature > 0 and -1 <= position_bias "
                      f"<= 1, got noise={noise}, temperature={temperature}, "
                      f"position_bias={position_bias}")
    self.oracle = oracle
    self.noise = noise
    self.position_bias = position_bias
    self.temperature = temperature
    self.seed = seed

  def prefer(self, lang, input_text, output_a, output_b):
    diff = (self.oracle.quality(lang, input_text, output_a)
            - self.oracle.quality(lang, input_text, output_b))
    z = _hash_normal(str(self.seed), lang, input_text, output_a, output_b)
    unbiased = float(special.expit((diff + self.noise * z) / self.temperature))
    return unbiased + self.position_bias * min(unbiased, 1.0 - unbiased)

  def __repr__(self):
    return (f"SimulatedLLMJudge(noise={self.noise}, position_bias={self.position_bias}, "
            f"temperature={self.temperature}, seed={self.seed})")


# ------------------------------------------------------------------------------ HTTP LLM judge
# Judge prompts in the spirit of the paper's appendix G (our wording): the two candidates are
# numbered, and the prompt ends with the answer prefix so the next token is "1" or "2".
SUMMARIZATION_PROMPT = """\
Below is a text followed by two candidate summaries of it, all in {language}. Decide which \
summary is better. A better summary conveys the main points of the text accurately and \
concisely, in {language}, and does not state anything the text does not support.

Text: {text}

Summary (1): {output_1}

Summary (2): {output_2}

Reply with only the number of the better summary, 1 or 2.
Preferred Summary="""

DIALOG_PROMPT = """\
Below is a conversation between a human and an AI assistant in {language}, followed by two \
candidate outputs for the assistant's next turn. Decide which output is better: more helpful, \
more accurate, harmless, and written in {language}.

{text}

Output (1): {output_1}

Output (2): {output_2}

Reply with only the number of the better output, 1 or 2.
Better output="""

TASKS = ("summarization", "dialog")
_RETRY_STATUS = frozenset({408, 429})  # and every 5xx
_FATAL_STATUS = frozenset({401, 403, 404})  # wrong key, model or URL: every call would fail
_ANSWER = re.compile(r"\s*[\"'(\[]?\s*([12])(?![0-9])")


def infer_task(input_text: str) -> str:
  """The task of an input written by formats.py: summarization or dialog."""
  if input_text.startswith(formats.SUMMARIZE_INSTRUCTION.split("{", 1)[0]):
    return "summarization"
  if formats.parse_dialog_input(input_text):
    return "dialog"
  raise UserError("cannot tell the task of a judge input (neither a summarization instruction nor "
                  "Human:/Assistant: turns); pass task='summarization' or task='dialog'")


def judge_prompt(task: str, lang: str, input_text: str, output_1: str, output_2: str) -> str:
  """The judge prompt for `task`, output_1 shown first; the task instruction is left out."""
  language = formats.LANGUAGE_NAMES.get(lang, lang)
  if task == "summarization":
    template, text = SUMMARIZATION_PROMPT, formats.parse_summarization_input(input_text)
  elif task == "dialog":
    turns = formats.parse_dialog_input(input_text)
    template = DIALOG_PROMPT
    text = "\n".join(f"{who}: {said}" for who, said in turns) if turns else input_text
  else:
    raise UserError(f"unknown judge task {task!r}; known: {', '.join(TASKS)}")
  return template.format(language=language, text=text, output_1=output_1, output_2=output_2)


def _read_verdict_cache(path: str) -> Dict[str, float]:
  """request hash -> verdict, from an HTTPJudge cache file (none yet: empty). A line cut short by a
  kill mid-write is skipped: its call is simply made again."""
  cache = {}
  if not os.path.exists(path):
    return cache
  with open(path, encoding="utf-8") as f:
    text = f.read()
  for line in text.splitlines():
    try:
      row = json.loads(line)
      cache[row["request"]] = float(row["verdict"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
      continue
  if text and not text.endswith("\n"):  # the next verdict starts a line of its own
    with open(path, "a", encoding="utf-8") as f:
      f.write("\n")
  return cache


class HTTPJudge(Judge):
  """An LLM judge behind an OpenAI-compatible `POST {base_url}/chat/completions` endpoint.

  The verdict is P("1") / (P("1") + P("2")) from the top logprobs of the first generated token
  when the endpoint returns them, else 1.0 / 0.0 from the answer text. Calls that end without a
  verdict return NaN and are counted by reason in `self.failures`: `http_<status>`,
  `connection_error`, `timeout` (after `max_attempts` tries with exponential backoff for 429, 5xx
  and network errors), `malformed_response`, `unexpected_answer`. 401/403/404 raise UserError.

  The API key is read from the environment variable `api_key_env` at each request and sent as a
  Bearer header; it is never stored on the object, logged or put into a message.

  With `cache_path`, every verdict is appended to that JSONL file as it arrives, keyed by a hash
  of the URL and the request (no key in it); a judge made again with the same file answers those
  requests from it. So a run that stops halfway (quota, network, a kill) resumes without paying
  for the calls it already made. Calls without a verdict are not kept: they are asked again.
  """

  def __init__(self, model: str, base_url: str = "https://api.openai.com/v1",
               api_key_env: str = "OPENAI_API_KEY", task: str = "auto", logprobs: bool = True,
               timeout: float = 60.0, max_attempts: int = 5, backoff_base: float = 1.0,
               backoff_max: float = 60.0, concurrency: int = 4,
               cache_path: Optional[str] = None):
    if task != "auto" and task not in TASKS:
      raise UserError(f"unknown judge task {task!r}; known: auto, {', '.join(TASKS)}")
    if max_attempts < 1 or concurrency < 1:
      raise UserError(f"HTTP judge needs max_attempts >= 1 and concurrency >= 1, got "
                      f"{max_attempts} and {concurrency}")
    self.name = f"http:{model}"
    self.model = model
    self.url = base_url.rstrip("/") + "/chat/completions"
    self.api_key_env = api_key_env
    self.task = task
    self.logprobs = logprobs
    self.timeout = timeout
    self.max_attempts = max_attempts
    self.backoff_base = backoff_base
    self.backoff_max = backoff_max
    self.concurrency = concurrency
    self.failures: collections.Counter = collections.Counter()
    self._lock = threading.Lock()
    self.cache_path, self._cache = None, {}
    if cache_path:
      self.use_cache(cache_path)

  def __repr__(self):
    return (f"HTTPJudge(model={self.model!r}, url={self.url!r}, "
            f"api_key_env={self.api_key_env!r}, task={self.task!r})")

  def prefer(self, lang, input_text, output_a, output_b, task: Optional[str] = None):
    task = task or self.task
    if task == "auto":
      task = infer_task(input_text)
    payload = self._payload(judge_prompt(task, lang, input_text, output_a, output_b))
    key = (hashlib.sha256(json.dumps([self.url, payload], sort_keys=True).encode()).hexdigest()
           if self.cache_path else None)
    if key in self._cache:
      return self._cache[key]
    response = self._post(payload)
    verdict = math.nan if response is None else self._read_verdict(response)
    if key and not math.isnan(verdict):
      with self._lock:
        self._cache[key] = verdict
        with open(self.cache_path, "a", encoding="utf-8") as f:
          f.write(json.dumps({"request": key, "verdict": verdict}) + "\n")
    return verdict

  def prefer_batch(self, langs, inputs, outputs_a, outputs_b, task: Optional[str] = None):
    langs = _check_batch(langs, inputs, outputs_a, outputs_b)
    with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
      verdicts = pool.map(lambda args: self.prefer(*args, task=task),
                          zip(langs, inputs, outputs_a, outputs_b))
      return np.array(list(verdicts), dtype=np.float64)

  def use_cache(self, path: str) -> None:
    """Keep verdicts in `path` from now on, and answer from those already there."""
    self.cache_path, self._cache = str(path), _read_verdict_cache(str(path))

  # ---------------------------------------------------------------------------- internals

  def _payload(self, prompt: str) -> dict:
    payload = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
               "max_tokens": 1, "temperature": 0}
    if self.logprobs:
      payload.update(logprobs=True, top_logprobs=5)
    return payload

  def _fail(self, reason: str, detail: str = "") -> float:
    with self._lock:
      self.failures[reason] += 1
    log.warning("%s: no verdict (%s) %s", self.name, reason, self._redact(detail)[:300])
    return math.nan

  def _redact(self, text: str) -> str:
    key = os.environ.get(self.api_key_env)
    return text.replace(key, "<redacted>") if key else text

  def _post(self, payload: dict) -> Optional[dict]:
    """The decoded JSON response, or None (failure counted) once retries are spent."""
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(self.api_key_env)
    if key:
      headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(payload).encode("utf-8")
    for attempt in range(self.max_attempts):
      retry_after = None
      try:
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
          body = response.read().decode("utf-8", errors="replace")
        try:
          return json.loads(body)
        except json.JSONDecodeError:
          self._fail("malformed_response", body)
          return None
      except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")
        if exc.code in _FATAL_STATUS:
          raise UserError(f"{self.name}: HTTP {exc.code} from {self.url}; check the model name, "
                          f"the URL and the API key in ${self.api_key_env}") from None
        reason = f"http_{exc.code}"
        if exc.code not in _RETRY_STATUS and exc.code < 500:
          self._fail(reason, detail)
          return None
        retry_after = exc.headers.get("Retry-After")
      except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut short
        timed_out = isinstance(exc, TimeoutError) or isinstance(
            getattr(exc, "reason", None), TimeoutError)
        reason, detail = ("timeout" if timed_out else "connection_error"), str(exc)
      if attempt + 1 < self.max_attempts:
        delay = self._backoff(attempt, retry_after)
        log.info("%s: %s, retry %d/%d in %.3gs", self.name, reason, attempt + 1,
                 self.max_attempts - 1, delay)
        time.sleep(delay)
    self._fail(reason, detail)
    return None

  def _backoff(self, attempt: int, retry_after: Optional[str]) -> float:
    delay = self.backoff_base * 2.0**attempt
    if retry_after and retry_after.strip().isdigit():  # the server knows best, within our cap
      delay = max(delay, float(retry_after))
    return min(delay, self.backoff_max)

  def _read_verdict(self, response: dict) -> float:
    try:
      choice = response["choices"][0]
      logprobs = choice.get("logprobs") or {}
      first = (logprobs.get("content") or [None])[0]
      if first:
        probs = {"1": 0.0, "2": 0.0}
        for candidate in first.get("top_logprobs") or [first]:
          token = candidate["token"].strip()
          if token in probs:  # "1" and " 1" are both the answer 1
            probs[token] += math.exp(candidate["logprob"])
        if probs["1"] + probs["2"] > 0:
          return probs["1"] / (probs["1"] + probs["2"])
      text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
      return self._fail("malformed_response", f"{type(exc).__name__}: {exc}")
    match = _ANSWER.match(text or "")
    if not match:
      return self._fail("unexpected_answer", repr(text))
    return 1.0 if match.group(1) == "1" else 0.0
