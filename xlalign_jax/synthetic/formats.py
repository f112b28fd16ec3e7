"""Task input formats shared by the seqio tasks and the oracle (keep these names stable).

The instructions are the paper's, in English for every language. A dialog input is the instruction
followed by one turn per line, each `Human: <text>` or `Assistant: <text>`:

  You are given a dialog between a human and an assistant in Spanish. Please write one turn of ...
  Human: <first prompter message>
  Assistant: <reply>
  Human: <follow-up>

Parsers here accept any whitespace between turns (a sentencepiece round trip turns newlines into
spaces), so the oracle reads decoded inputs as well as the original ones.
"""
import re
from typing import List, Sequence, Tuple

from xlalign_jax.errors import UserError

SUMMARIZE_INSTRUCTION = "Summarize the following text in {language}:"
DIALOG_INSTRUCTION = ("You are given a dialog between a human and an assistant in {language}. "
                      "Please write one turn of the assistant side in {language}.")
LANGUAGE_NAMES = {
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "ru": "Russian",
    "tr": "Turkish",
    "vi": "Vietnamese",
}
HUMAN = "Human"
ASSISTANT = "Assistant"
# OpenAssistant roles (and plain names) -> the speaker label written in the input.
_SPEAKERS = {"prompter": HUMAN, "human": HUMAN, "user": HUMAN, "assistant": ASSISTANT}
_TURN_SPLIT = re.compile(rf"(?:^|\s)({HUMAN}|{ASSISTANT}):\s")


def language_name(lang: str) -> str:
  if lang not in LANGUAGE_NAMES:
    raise UserError(f"unknown language code {lang!r}; known: {', '.join(sorted(LANGUAGE_NAMES))}")
  return LANGUAGE_NAMES[lang]


def format_summarization_input(lang: str, article: str) -> str:
  """`Summarize the following text in Spanish: <article>`."""
  return f"{SUMMARIZE_INSTRUCTION.format(language=language_name(lang))} {article}"


def format_dialog_input(lang: str, turns: Sequence[Tuple[str, str]]) -> str:
  """The dialog instruction, then one `Human: ...` / `Assistant: ...` line per turn.

  Roles are OpenAssistant's ("prompter", "assistant"); "human" and "user" also mean the human.
  """
  lines = [DIALOG_INSTRUCTION.format(language=language_name(lang))]
  for role, text in turns:
    if role not in _SPEAKERS:
      raise UserError(f"unknown dialog role {role!r}; known: {', '.join(sorted(_SPEAKERS))}")
    lines.append(f"{_SPEAKERS[role]}: {' '.join(text.split())}")
  return "\n".join(lines)


def parse_summarization_input(text: str) -> str:
  """The article of a summarization input (the text after the instruction's colon)."""
  head, sep, article = text.partition(":")
  return article.strip() if sep and head.startswith("Summarize") else text.strip()


def parse_dialog_input(text: str) -> List[Tuple[str, str]]:
  """(speaker, text) turns of a dialog input, speaker being HUMAN or ASSISTANT."""
  parts = _TURN_SPLIT.split(text)
  # parts = [instruction, speaker, text, speaker, text, ...]
  return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
