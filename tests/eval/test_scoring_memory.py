"""Scoring within little memory: a window's log-probabilities are computed a few rows at a
time and its logits checked the same way, with the same numbers to the last bit as the whole
window computed at once."""

import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.eval import scoring
from numfmt.eval.scoring import Window, logits_of, score


def _whole(logits: torch.Tensor, w: Window, targets: torch.Tensor) -> float:
    """The window's NLL as one log-softmax over the whole window (the reference)."""
    logp = torch.log_softmax(logits[w.score_from - w.begin - 1 : -1].double(), dim=-1)
    return float(-logp.gather(1, targets[:, None]).sum())


@pytest.mark.parametrize(
    ("rows", "vocab", "chunk_rows"),
    [(2, 96, 1), (37, 96, 5), (300, 5000, 7), (129, 49_152, 3), (64, 1000, 64)],
    ids=["2x96-by-1", "37x96-by-5", "300x5000-by-7", "129x49152-by-3", "64x1000-whole"],
)
@pytest.mark.parametrize("offset", [1, 9], ids=["first-window", "overlapping"])
def test_rows_at_a_time_give_the_whole_windows_nll_to_the_last_bit(
    monkeypatch, rows, vocab, chunk_rows, offset
):
    monkeypatch.setattr(scoring, "CHUNK_BYTES", 8 * vocab * chunk_rows)
    g = torch.Generator().manual_seed(rows + vocab)
    logits = torch.randn(rows, vocab, generator=g) * 6
    w = Window(100, 100 + rows, 100 + min(offset, rows - 1))
    targets = torch.randint(0, vocab, (w.end - w.score_from,), generator=g)
    chunked = float(-scoring._target_log_probs(logits, w, targets).sum())
    assert chunked == _whole(logits, w, targets)


def test_a_model_scored_rows_at_a_time_matches_the_whole_window(tiny_llama, monkeypatch):
    row = torch.randint(0, 96, (150,), generator=torch.Generator().manual_seed(3))
    whole = 0.0
    for w in scoring.windows(150, 64, 40):
        chunk = row[w.begin : w.end]
        with torch.no_grad():
            logits = tiny_llama(chunk[None]).logits[0]  # with the key-value cache it keeps
        whole += _whole(logits, w, chunk[w.score_from - w.begin :])
    monkeypatch.setattr(scoring, "CHUNK_BYTES", 8 * 96 * 3)
    got = score(tiny_llama, row, context=64, stride=40)
    assert got.tokens == 149 and got.nll == whole / 149  # to the last bit
    # and the logits without the cache are the same numbers as with it
    with torch.no_grad():
        cached = tiny_llama(row[None, :64]).logits[0]
    assert torch.equal(logits_of(tiny_llama, row[:64]), cached)


def test_a_non_finite_logit_in_any_chunk_is_refused(tiny_llama, monkeypatch):
    monkeypatch.setattr(scoring, "CHUNK_BYTES", 8 * 96 * 2)
    row = torch.randint(0, 96, (20,), generator=torch.Generator().manual_seed(4))
    real = tiny_llama.lm_head.forward

    def one_nan(x):
        y = real(x)
        y[0, -1, 5] = float("nan")  # the last row: the last chunk
        return y

    monkeypatch.setattr(tiny_llama.lm_head, "forward", one_nan)
    with pytest.raises(NumfmtError, match="NaN or infinity"):
        score(tiny_llama, row, context=20)
