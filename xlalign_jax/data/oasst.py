"""OpenAssistant message trees (the `*.trees.jsonl[.gz]` export) -> dialog threads, SFT, pairs.

A line is one tree: `{message_tree_id, tree_state, prompt: {message_id, parent_id, text, role,
lang, rank, deleted, synthetic, replies: [...]}}`. Every prompter message becomes a `Thread`: the
dialog up to and including it, and its usable assistant replies.

The pair rule: for each prompter message, among its non-deleted assistant replies with a non-null
rank, every (i, j) with rank_i < rank_j gives chosen=i, rejected=j. The SFT target is the
best-ranked reply. Deleted and (by default) synthetic messages are dropped together with their
replies, since a thread below them would contain them. Trees go to train or validation by a hash
of their id.

Bad input is skipped and counted per file (see `skips.py`): lines that are not JSON, trees or
messages with missing fields, replies whose parent_id names another message, empty text, unknown
roles, ranks or language codes. A bad message is skipped with its replies; the rest of its tree
stays.
"""
import dataclasses
import functools
import hashlib
import json
import re
from typing import List, Optional, Tuple

from absl import logging

from xlalign_jax.data import files
from xlalign_jax.data.skips import SkipCounter
from xlalign_jax.errors import UserError

SPLITS = ("train", "validation")
VALIDATION_FRACTION = 0.05
ROLES = ("prompter", "assistant")
FILE_PATTERNS = ("*.jsonl", "*.jsonl.gz")
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]+)*$")


@dataclasses.dataclass(frozen=True)
class Reply:
  message_id: str
  text: str
  rank: Optional[int]


@dataclasses.dataclass(frozen=True)
class Thread:
  """A prompter message, the dialog leading to it, and the assistant replies it received."""
  tree_id: str
  message_id: str  # of the prompter message
  lang: str  # normalized: "en", "pt", ...
  turns: Tuple[Tuple[str, str], ...]  # (role, text), oldest first, ending with this message
  replies: Tuple[Reply, ...]  # usable assistant replies, in file order

  @property
  def ranked(self) -> Tuple[Reply, ...]:
    return tuple(r for r in self.replies if r.rank is not None)


def normalize_lang(code: str) -> str:
  """'pt-BR' -> 'pt', 'EN' -> 'en'."""
  return re.split(r"[-_]", code.strip())[0].lower()


def split_of(tree_id: str, validation_fraction: float = VALIDATION_FRACTION) -> str:
  """Deterministic split of a tree, the same in every process (unlike Python's hash())."""
  digest = hashlib.sha1(tree_id.encode("utf-8")).digest()
  fraction = int.from_bytes(digest[:8], "big") / 2**64
  return "validation" if fraction < validation_fraction else "train"


def pairs(thread: Thread) -> List[Tuple[Reply, Reply]]:
  """(chosen, rejected) for every two ranked replies with rank_chosen < rank_rejected.

  Two replies with identical text make no pair (there is nothing to prefer); the reader counts them.
  """
  ranked = thread.ranked
  return [(a, b) for a in ranked for b in ranked if a.rank < b.rank and a.text != b.text]


def best_reply(thread: Thread) -> Optional[Reply]:
  """The reply with the lowest rank (first in file order on ties), or None if none is ranked."""
  ranked = thread.ranked
  return min(ranked, key=lambda r: r.rank) if ranked else None


def select(threads, split: str, lang: str,
           validation_fraction: float = VALIDATION_FRACTION) -> List[Thread]:
  """The threads of one split and language."""
  if split not in SPLITS:
    raise UserError(f"OpenAssistant has splits {SPLITS}, not {split!r}")
  return [t for t in threads
          if t.lang == lang and split_of(t.tree_id, validation_fraction) == split]


def load(oasst_dir: str, include_synthetic: bool = False, include_deleted: bool = False,
         strict: bool = False) -> Tuple[Thread, ...]:
  """All threads of the `*.jsonl[.gz]` files in `oasst_dir` (a tree in two files is read once)."""
  paths = files.list_files(oasst_dir, FILE_PATTERNS)
  if not paths:
    raise UserError(f"{oasst_dir}: no OpenAssistant files (*.jsonl, *.jsonl.gz) found")
  threads, seen, duplicates = [], set(), 0
  for path in paths:
    by_tree = {}
    for t in read_file(path, include_synthetic, include_deleted, strict):
      by_tree.setdefault(t.tree_id, []).append(t)
    for tree_id, tree_threads in by_tree.items():
      if tree_id in seen:
        duplicates += 1
        continue
      seen.add(tree_id)
      threads.extend(tree_threads)
  if duplicates:
    logging.warning("%s: %d trees appear in more than one file; read once", oasst_dir, duplicates)
  return tuple(threads)


def read_file(path: str, include_synthetic: bool = False, include_deleted: bool = False,
              strict: bool = False) -> Tuple[Thread, ...]:
  """The threads of one trees file (parsed once per process while the file is unchanged)."""
  return parse_file(path, include_synthetic, include_deleted, strict)[0]


def parse_file(path: str, include_synthetic: bool = False, include_deleted: bool = False,
               strict: bool = False) -> Tuple[Tuple[Thread, ...], SkipCounter]:
  """(threads, the counts of what was used and skipped) of one trees file."""
  if not files.exists(path):
    raise UserError(f"{path}: file not found")
  return _parse_cached(files.signature(path), include_synthetic, include_deleted, strict)


@functools.lru_cache(maxsize=64)
def _parse_cached(signature, include_synthetic, include_deleted, strict):
  path = signature[0]
  counter = SkipCounter(path, unit="trees", strict=strict)
  walker = _TreeWalker(counter, include_synthetic, include_deleted)
  tree_ids = set()
  for line_no, raw in files.read_lines(path):
    tree = _parse_line(raw, counter, f"line {line_no}")
    if tree is None:
      continue
    if tree["message_tree_id"] in tree_ids:
      counter.skip("duplicate message_tree_id", f"line {line_no}")
      continue
    tree_ids.add(tree["message_tree_id"])
    if walker.walk_tree(tree, f"line {line_no}"):
      counter.keep()
  counter.finish()
  return tuple(walker.threads), counter


def _parse_line(raw: bytes, counter: SkipCounter, where: str) -> Optional[dict]:
  """The tree object of one line, or None (blank, or bad and counted)."""
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError:
    counter.skip("line not UTF-8", where)
    return None
  if not text.strip():
    return None
  try:
    tree = json.loads(text)
  except json.JSONDecodeError:
    counter.skip("line not JSON", where)
    return None
  if not isinstance(tree, dict):
    counter.skip("line not a JSON object", where)
    return None
  if "prompt" not in tree:
    if "message_id" in tree and "parent_id" in tree:
      counter.skip("a flat message, not a tree (use the *.trees.jsonl export)", where)
    else:
      counter.skip("missing field prompt", where)
    return None
  if not isinstance(tree.get("message_tree_id"), str) or not tree["message_tree_id"]:
    counter.skip("missing field message_tree_id", where)
    return None
  return tree


class _TreeWalker:
  """Walks trees depth-first, collecting threads and counting what it skips."""

  def __init__(self, counter: SkipCounter, include_synthetic: bool, include_deleted: bool):
    self.counter = counter
    self.include_synthetic = include_synthetic
    self.include_deleted = include_deleted
    self.threads: List[Thread] = []

  def walk_tree(self, tree: dict, where: str) -> bool:
    """Collects the tree's threads; False if its root message is bad input."""
    root = tree["prompt"]
    if not self._policy_kept(root):
      return True
    if self._problem(root, parent=None, where=where) is not None:
      return False
    self._walk(tree["message_tree_id"], root, (), where)
    return True

  def _walk(self, tree_id: str, msg: dict, turns: tuple, where: str) -> None:
    turns = turns + ((msg["role"], msg["text"]),)
    children = [c for c in msg.get("replies") or () if self._usable(c, msg, where)]
    if msg["role"] == "prompter":
      replies = tuple(Reply(c["message_id"], c["text"], c.get("rank")) for c in children)
      thread = Thread(tree_id, msg["message_id"], normalize_lang(msg["lang"]), turns, replies)
      identical = sum(1 for a in thread.ranked for b in thread.ranked
                      if a.rank < b.rank and a.text == b.text)
      if identical:
        self.counter.drop("reply pairs with identical texts", identical)
      self.threads.append(thread)
    for child in children:
      self._walk(tree_id, child, turns, where)

  def _usable(self, msg, parent: dict, where: str) -> bool:
    return self._policy_kept(msg) and self._problem(msg, parent, where) is None

  def _policy_kept(self, msg) -> bool:
    """False (and counted) for messages dropped by policy, which drops their replies too."""
    if not isinstance(msg, dict):
      return True  # bad input, reported by _problem
    if msg.get("deleted") and not self.include_deleted:
      self.counter.drop("deleted messages (with their replies)")
      return False
    if msg.get("synthetic") and not self.include_synthetic:
      self.counter.drop("synthetic messages (with their replies)")
      return False
    return True

  def _problem(self, msg, parent: Optional[dict], where: str) -> Optional[str]:
    """The reason `msg` is bad input (counted), or None if it is usable."""
    reason = _message_problem(msg, parent)
    if reason is not None:
      msg_id = msg.get("message_id") if isinstance(msg, dict) else None
      self.counter.skip(reason, f"{where}, message {msg_id}" if msg_id else where)
    return reason


def _message_problem(msg, parent: Optional[dict]) -> Optional[str]:
  if not isinstance(msg, dict):
    return "message not a JSON object"
  for field in ("message_id", "role", "text"):
    if not isinstance(msg.get(field), str):
      return f"message missing field {field}"
  if msg["role"] not in ROLES:
    return "unknown role"
  if not msg["text"].strip():
    return "empty text"
  # A reply must name the message it is nested under; a root must name none.
  expected_parent = parent["message_id"] if parent is not None else None
  if msg.get("parent_id", expected_parent) != expected_parent:
    return "missing parent (parent_id names another message)"
  if parent is not None and parent["role"] == msg["role"]:
    return "roles do not alternate"
  if parent is None and msg["role"] != "prompter":
    return "tree does not start with a prompter message"
  if msg["role"] == "prompter":
    if not isinstance(msg.get("lang"), str):
      return "message missing field lang"
    if not _LANG_RE.match(msg["lang"]):
      return "unknown language code"
  rank = msg.get("rank")
  if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)):
    return "rank not an integer"
  if not isinstance(msg.get("replies", []), list):
    return "replies not a list"
  return None
