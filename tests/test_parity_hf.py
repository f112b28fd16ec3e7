"""Acceptance parity: `xlalign convert --from t5x` on the real legacy T5X checkpoint, then
`xlalign score`, equals Hugging Face's PyTorch T5 loaded with the same weights (an independent
implementation) within 1e-3. Needs the optional extra: pip install -e .[parity]."""
import json

import numpy as np
import pytest

from xlalign_jax import cli, convert

torch = pytest.importorskip("torch", reason="parity extra not installed (pip install -e .[parity])")
transformers = pytest.importorskip("transformers", reason="parity extra not installed")

EXAMPLES = [
    {"inputs": "This is a test.", "targets": "a test"},
    {"inputs": "the quick brown fox jumps over the lazy dog", "targets": "fox"},
    {"inputs": "x", "targets": "a much longer target sequence than its input, to cross buckets"},
    {"inputs": "", "targets": ""},
]


def _hf_logliks(hf_dir, vocab):
  model = transformers.T5ForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
  out = []
  for ex in EXAMPLES:
    enc = torch.tensor([list(vocab.encode(ex["inputs"])) + [1]])
    tgt = torch.tensor([list(vocab.encode(ex["targets"])) + [1]])
    with torch.no_grad():
      logits = model(input_ids=enc, labels=tgt).logits.double()
    logp = torch.log_softmax(logits, -1).gather(-1, tgt[..., None])[..., 0]
    out.append(float(logp.sum()))
  return np.array(out)


def test_convert_then_score_matches_pytorch_t5(shared_data, tmp_path, capsys):
  import seqio
  ckpt = shared_data / "t5x/test_t5_tiny.checkpoint_0"
  spm = shared_data / "sentencepiece/t5_test_sentencepiece.model"
  assert cli.main(["convert", "--from", "t5x", "--checkpoint", str(ckpt),
                   "--out", str(tmp_path / "ours")]) == 0
  src = tmp_path / "in.jsonl"
  src.write_text("".join(json.dumps(e) + "\n" for e in EXAMPLES))
  assert cli.main(["score", "--checkpoint", str(tmp_path / "ours"), "--vocab", str(spm),
                   "--input", str(src), "--output", str(tmp_path / "out.jsonl")]) == 0
  ours = np.array([json.loads(l)["loglik"]
                   for l in (tmp_path / "out.jsonl").read_text().splitlines()])

  params, config = convert.load_t5x(str(ckpt))
  convert.save_hf(params, config, str(tmp_path / "hf"))
  theirs = _hf_logliks(tmp_path / "hf", seqio.SentencePieceVocabulary(str(spm)))
  assert np.all(np.isfinite(ours)) and np.all(ours < 0)
  np.testing.assert_allclose(ours, theirs, atol=1e-3)
