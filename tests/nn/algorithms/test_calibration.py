"""Calibration text as a library object: windows of 512 tokens, each a batch of one."""

import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.nn.algorithms.calibration import batches, calibration_windows


class Chars:
    """A tokenizer of one id per character (enough to count windows)."""

    def __call__(self, text, add_special_tokens=False, return_tensors="pt"):
        class Out:
            input_ids = torch.tensor([[ord(c) % 96 for c in text]])

        return Out()


def test_windows_cut_the_first_tokens_into_batches_of_one():
    text = "abcdefgh" * 200  # 1600 tokens
    windows = calibration_windows(Chars(), text, tokens=1200, window=512)
    assert [tuple(w.shape) for w in windows] == [(1, 512), (1, 512)]
    assert torch.equal(torch.cat([w[0] for w in windows]), Chars()(text).input_ids[0][:1024])


def test_short_or_empty_text_is_refused_with_the_count():
    with pytest.raises(NumfmtError, match="has 100 tokens, shorter than one window of 512"):
        calibration_windows(Chars(), "x" * 100)
    with pytest.raises(NumfmtError, match="the text is empty"):
        calibration_windows(Chars(), "   ")
    with pytest.raises(NumfmtError, match="calibration data is empty"):
        batches([])
    assert [tuple(b.shape) for b in batches(torch.zeros(7, dtype=torch.long))] == [(1, 7)]
