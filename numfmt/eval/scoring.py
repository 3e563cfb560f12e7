"""Measuring what quantization did to a language model: perplexity, KL, top-1, generated text.

All models are scored on the same windows of the same text, token for token, as llama.cpp's
``perplexity`` tool does: each window of ``context`` tokens is one forward pass, and the
tokens after the first of each window are scored (with ``stride`` below ``context``, windows
overlap and each scores only its last ``stride`` tokens, the first window all of its own).
Beside perplexity, the KL divergence of each model's next-token distribution from the
reference's, and how often both put the same token first (top-1 agreement), averaged over the
scored tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.nn.algorithms.calibration import (
    model_positions,
    tokenize,  # noqa: F401 (here too: the text scored)
)
from numfmt.nn.progress import Progress, tracker


@dataclass(frozen=True)
class Window:
    """Tokens ``begin:end`` go through the model; positions ``score_from:end`` are scored (a
    position is predicted from those before it)."""

    begin: int
    end: int
    score_from: int


def windows(n_tokens: int, context: int = 512, stride: int | None = None) -> list[Window]:
    """The windows that cover ``n_tokens`` tokens (see the module's docstring).

    A text shorter than one window is refused: its few tokens would be scored with less
    context than every other text's.

    >>> [(w.begin, w.end, w.score_from) for w in windows(10, context=4)]
    [(0, 4, 1), (4, 8, 5), (8, 10, 9)]
    >>> [(w.begin, w.end, w.score_from) for w in windows(10, context=4, stride=2)]
    [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    """
    if context < 2:
        raise NumfmtError(f"a window needs at least 2 tokens, not {context}")
    stride = context if stride is None else stride
    if not 1 <= stride <= context:
        raise NumfmtError(f"the stride is between 1 and the context ({context}), not {stride}")
    if n_tokens < context:
        raise NumfmtError(
            f"the text is too short: {n_tokens} token(s), less than one window of {context} "
            "(give a longer text, or a smaller context)"
        )
    if stride == context:
        out = []
        for begin in range(0, n_tokens, context):
            end = min(begin + context, n_tokens)
            if end - begin >= 2:
                out.append(Window(begin, end, begin + 1))
        return out
    out = [Window(0, min(context, n_tokens), 1)]
    end = out[0].end
    while end < n_tokens:
        new_end = min(end + stride, n_tokens)
        out.append(Window(max(0, new_end - context), new_end, end))
        end = new_end
    return out


@dataclass(frozen=True, eq=False)
class Score(Displayable):
    """One model on the text: perplexity, and beside the reference (None for the reference
    itself) the mean KL divergence in nats and the top-1 agreement; ``seconds`` the forward
    passes took."""

    name: str
    perplexity: float
    nll: float
    tokens: int
    kl: float | None
    top1: float | None
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "perplexity": self.perplexity,
            "nll": self.nll,
            "tokens": self.tokens,
            "kl": self.kl,
            "top1": self.top1,
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
        }


#: Bytes of float64 a window's log-probabilities are computed in at a time (a few rows of
#: the vocabulary), so that scoring holds the float32 logits and little beside them.
CHUNK_BYTES = 2**20


def _row_chunks(rows: int, width: int) -> list[slice]:
    step = max(1, CHUNK_BYTES // (8 * max(1, width)))
    return [slice(a, min(a + step, rows)) for a in range(0, rows, step)]


def logits_of(model: Any, ids: torch.Tensor) -> torch.Tensor:
    """The model's next-token logits (float32) for one row of token ids; a NumfmtError where
    they hold NaN or infinity (no metric is computed from them). No key-value cache is kept
    (nothing is generated after)."""
    config = getattr(model, "config", None)
    options = {"use_cache": False} if getattr(config, "use_cache", None) is not None else {}
    with torch.no_grad():
        out = model(ids[None, :], **options)
    logits = out.logits if hasattr(out, "logits") else out[0]
    del out  # (the hidden states and anything else it holds)
    logits = logits[0].float()
    # checked a few rows at a time: isfinite on the whole would cost several copies of it
    if not all(bool(torch.isfinite(logits[c]).all()) for c in _row_chunks(*logits.shape)):
        raise NumfmtError(
            "the model's logits hold NaN or infinity (a weight is NaN, or a layer overflowed "
            "float32): it cannot be scored"
        )
    return logits


def token_ids(model: Any, ids: Any, context: int) -> torch.Tensor:
    """ids as one row of int64 token ids the model can read: each within its vocabulary, and
    a context no longer than its positions (where its config says them); a NumfmtError
    otherwise (a tokenizer of another model, ids out of range)."""
    row = torch.as_tensor(ids).reshape(-1)
    if row.is_floating_point() or row.is_complex():
        raise NumfmtError(f"token ids are integers, not {row.dtype}")
    row = row.to(torch.long)
    config = getattr(model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    embeddings = getattr(model, "get_input_embeddings", None)
    if callable(embeddings) and getattr(embeddings(), "num_embeddings", None):
        vocab = embeddings().num_embeddings
    if row.numel() and (int(row.min()) < 0 or (vocab is not None and int(row.max()) >= vocab)):
        raise NumfmtError(
            f"token ids run from {int(row.min())} to {int(row.max())}, outside the model's "
            f"vocabulary of {vocab} (a tokenizer of another model?)"
        )
    positions = model_positions(model)
    if positions is not None and min(context, int(row.numel())) > positions:
        raise NumfmtError(
            f"a window of {min(context, int(row.numel()))} tokens is longer than the model's "
            f"{positions} positions: give a context of {positions} or fewer"
        )
    return row


def _perplexity(mean: float) -> float:
    """exp(mean NLL); a NumfmtError where it leaves float64's range."""
    try:
        return math.exp(mean)
    except OverflowError:
        raise NumfmtError(
            f"the perplexity is beyond float64's range (a mean NLL of {mean:.4g} nats per "
            "token): the model's predictions are broken"
        ) from None


def score_models(
    models: dict[str, Any],
    ids: Any,
    *,
    context: int = 512,
    stride: int | None = None,
    reference: str | None = None,
    progress: Progress = None,
) -> list[Score]:
    """Perplexity of each model on the same windows of ``ids``, and KL and top-1 against the
    ``reference`` (the first model by default).

    Models run one after the other on each window, so that only one window's logits per model
    are held at a time.
    """
    if not models:
        raise NumfmtError("no models to score")
    ids = token_ids(next(iter(models.values())), ids, context)
    reference = next(iter(models)) if reference is None else reference
    if reference not in models:
        raise NumfmtError(f"the reference '{reference}' is not one of the models")
    spans = windows(int(ids.numel()), context, stride)
    nll = dict.fromkeys(models, 0.0)
    kl = dict.fromkeys(models, 0.0)
    agree = dict.fromkeys(models, 0)
    seconds = dict.fromkeys(models, 0.0)
    count = 0
    order = [reference, *(n for n in models if n != reference)]
    with tracker(len(spans) * len(order), "scoring", progress) as step:
        for w in spans:
            chunk = ids[w.begin : w.end]
            targets = chunk[w.score_from - w.begin :]
            ref_logp = None
            for name in order:
                start = time.perf_counter()
                logits = logits_of(models[name], chunk)
                seconds[name] += time.perf_counter() - start
                # the logits at position p predict token p + 1
                logp = _log_probs(logits, w)
                nll[name] += float(-logp.gather(1, targets[:, None]).sum())
                if name == reference:
                    ref_logp = logp
                else:
                    assert ref_logp is not None  # the reference runs first
                    kl[name] += float((ref_logp.exp() * (ref_logp - logp)).sum())
                    agree[name] += int((ref_logp.argmax(-1) == logp.argmax(-1)).sum())
                step(name)
            count += int(targets.numel())
    out = []
    for name in models:
        mean = nll[name] / count
        is_ref = name == reference
        out.append(
            Score(
                name=name,
                perplexity=_perplexity(mean),
                nll=mean,
                tokens=count,
                kl=None if is_ref else kl[name] / count,
                top1=None if is_ref else agree[name] / count,
                seconds=seconds[name],
            )
        )
    return out


def reference_logprobs(
    model: Any, ids: Any, *, context: int = 512, stride: int | None = None
) -> list[torch.Tensor]:
    """The reference's log-probabilities at the scored positions of each window (float32,
    tokens x vocabulary: 1.6 GB for 8,192 tokens of a 49,152-token vocabulary), so that
    models can then be scored one at a time against it (:func:`score`)."""
    return list(Reference(model, ids, context=context, stride=stride, max_bytes=0))


class Reference(Sequence[torch.Tensor]):
    """The reference model's log-probabilities on each window, for :func:`score`: each
    window is computed once and kept while the kept ones fit in ``max_bytes`` (a float32 row
    per scored token and word of the vocabulary: 100 MB for 512 tokens of SmolLM2's 49,152);
    a window beyond that is computed again each time it is asked for, so that a long text
    costs forward passes rather than memory.

    ``score()`` is the reference model's own Score on the text (perplexity; no KL), computed
    from the same log-probabilities, not by another pass.
    """

    def __init__(
        self,
        model: Any,
        ids: Any,
        *,
        context: int = 512,
        stride: int | None = None,
        max_bytes: int = 2 * 2**30,
    ) -> None:
        self.model = model
        self.ids = token_ids(model, ids, context)
        self.spans = windows(int(self.ids.numel()), context, stride)
        self.max_bytes = max_bytes
        self._kept: dict[int, torch.Tensor] = {}
        self._bytes = 0
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int) -> torch.Tensor:  # type: ignore[override]
        if i in self._kept:
            return self._kept[i]
        w = self.spans[i]
        start = time.perf_counter()
        logits = logits_of(self.model, self.ids[w.begin : w.end])
        logp = _log_probs(logits, w)
        self.seconds += time.perf_counter() - start
        size = logp.numel() * logp.element_size()
        if self._bytes + size <= self.max_bytes:
            self._kept[i] = logp
            self._bytes += size
        return logp

    def score(self, name: str = "reference") -> Score:
        """The reference model's perplexity on the text, from its log-probabilities."""
        nll = 0.0
        count = 0
        for i, w in enumerate(self.spans):
            targets = self.ids[w.score_from : w.end]
            nll += float(-self[i].gather(1, targets[:, None]).sum())
            count += int(targets.numel())
        mean = nll / count
        return Score(name, _perplexity(mean), mean, count, None, None, self.seconds)


def score(
    model: Any,
    ids: Any,
    *,
    context: int = 512,
    stride: int | None = None,
    reference: Sequence[torch.Tensor] | None = None,
    name: str = "model",
    progress: Progress = False,
) -> Score:
    """One model on ``ids``: perplexity, and against ``reference`` (from
    :func:`reference_logprobs` on the same windows) KL and top-1; ``progress`` a bar over
    the windows."""
    ids = token_ids(model, ids, context)
    spans = windows(int(ids.numel()), context, stride)
    if reference is not None and len(reference) != len(spans):
        raise NumfmtError("the reference was computed on other windows")
    nll = kl = 0.0
    agree = count = 0
    seconds = 0.0
    with tracker(len(spans), "scoring", progress) as step:
        for i, w in enumerate(spans):
            nll_w, kl_w, agree_w, seconds_w = _window(model, ids, w, reference, i)
            nll, kl, agree, seconds = nll + nll_w, kl + kl_w, agree + agree_w, seconds + seconds_w
            count += w.end - w.score_from
            step(name)
    return Score(
        name=name,
        perplexity=_perplexity(nll / count),
        nll=nll / count,
        tokens=count,
        kl=None if reference is None else kl / count,
        top1=None if reference is None else agree / count,
        seconds=seconds,
    )


def _log_probs(logits, w: Window):
    """The window's next-token log-probabilities, in float64: a KL divergence between two
    close models is a sum of many tiny terms, which float32 would bury in its rounding (and
    could even make negative)."""
    return torch.log_softmax(logits[w.score_from - w.begin - 1 : -1].double(), dim=-1)


def _target_log_probs(logits, w: Window, targets: torch.Tensor) -> torch.Tensor:
    """The log-probability of each scored token, as ``_log_probs(logits, w)`` gives it (each
    row's log-softmax is its own), computed a few rows at a time. Its sum is the same to
    the last bit as the sum of the whole window's gather: the same numbers, added in the same
    order."""
    rows = logits[w.score_from - w.begin - 1 : -1]
    out = torch.empty(rows.shape[0], dtype=torch.float64)
    for c in _row_chunks(*rows.shape):
        logp = torch.log_softmax(rows[c].double(), dim=-1)
        out[c] = logp.gather(1, targets[c, None])[:, 0]
    return out


def _window(model, ids, w: Window, reference, i: int) -> tuple[float, float, int, float]:
    """One window's summed NLL, KL and top-1 agreements against the reference, and seconds."""
    chunk = ids[w.begin : w.end]
    targets = chunk[w.score_from - w.begin :]
    start = time.perf_counter()
    logits = logits_of(model, chunk)
    seconds = time.perf_counter() - start
    if reference is None:  # a few rows at a time: the window's float64 log-probs never whole
        return float(-_target_log_probs(logits, w, targets).sum()), 0.0, 0, seconds
    logp = _log_probs(logits, w)
    nll = float(-logp.gather(1, targets[:, None]).sum())
    kl, agree = 0.0, 0
    if reference is not None:
        ref = reference[i]
        kl = float((ref.exp() * (ref - logp)).sum())
        agree = int((ref.argmax(-1) == logp.argmax(-1)).sum())
    return nll, kl, agree, seconds


def perplexity(model: Any, ids: Any, *, context: int = 512, stride: int | None = None) -> float:
    """The perplexity of one model on ``ids`` (token ids) over the windows above."""
    return score(model, ids, context=context, stride=stride).perplexity
