"""Schemes: targets, ranges of codes, presets, parsing and the messages for nonsense."""

from statistics import NormalDist

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import NF4_CODEBOOK, PRESETS, Mapping, PerGroup, parse_scheme, scheme


@pytest.mark.parametrize(
    ("spec", "qmin", "qmax"),
    [
        ("int8", -127, 127),
        ("int8/full", -128, 127),
        ("int8/asym", 0, 255),
        ("uint8", 0, 255),
        ("int4", -7, 7),
        ("int4/asym", 0, 15),
        ("int2", -1, 1),
        ("int16/asym", 0, 65535),
    ],
)
def test_code_ranges(spec, qmin, qmax):
    s = parse_scheme(spec)
    assert (s.qmin, s.qmax) == (qmin, qmax)


def test_presets_follow_their_specs():
    assert (PRESETS["mxfp4"].granularity, PRESETS["mxfp4"].scale_format) == (
        PerGroup(32),
        "float8_e8m0fnu",
    )
    assert PRESETS["mxfp8"].target == "float8_e4m3fn"
    assert PRESETS["mxint8"].qmin == -128
    assert (PRESETS["nvfp4"].granularity, PRESETS["nvfp4"].scale_format) == (
        PerGroup(16),
        "float8_e4m3fn",
    )
    assert PRESETS["nf4"].granularity == PerGroup(64)
    assert scheme("mxfp6") is PRESETS["mxfp6_e2m3"]


def test_nf4_codebook_is_qloras_normal_quantiles():
    # QLoRA (Dettmers et al. 2023): 8 positive quantiles of N(0, 1) between 0.5 and
    # offset = 0.9677083, 7 negative ones, and 0; each side scaled so its extreme is 1.
    offset = 0.9677083
    inv = NormalDist().inv_cdf
    pos = [inv(v) for v in np.linspace(offset, 0.5, 9)[:-1]]
    neg = [-inv(v) for v in np.linspace(offset, 0.5, 8)[:-1]]
    values = np.sort(np.array([*pos, 0.0, *neg]))
    values /= np.abs(values).max()
    assert np.allclose(values, NF4_CODEBOOK, atol=2e-7)
    assert NF4_CODEBOOK[7] == 0 and NF4_CODEBOOK[0] == -1 and NF4_CODEBOOK[-1] == 1


def test_parse_scheme_parts():
    s = parse_scheme("int4/asym/group:128/mse:50/scale:fp16/stochastic")
    assert (s.bits, s.mapping, s.granularity, s.method, s.method_options) == (
        4,
        Mapping.ASYMMETRIC,
        PerGroup(128),
        "mse",
        {"ratios": 50},
    )
    assert s.scale_format == "float16" and s.rounding.value == "stochastic"
    assert parse_scheme("int8 percentile:99.9").method_options == {"percentile": 99.9}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("int1", "2 to 32"),
        ("int33", "2 to 32"),
        ("fp8_e4m3/asym", "symmetric grid"),
        ("bogus", "unknown quantization target"),
        ("int8/sideways", "cannot read 'sideways'"),
        ("int8/percentile:200", "lies in"),
        ("int8/mse:0", "positive integer"),
        ("int8/scale:int8", "float format"),
        ("int8/search", "Python only"),
        ("q4_0/mse", "reference quantizer"),
        ("nf4/scale:fp16", "fixes its own"),
        ("mxfp4/group:64", "fixes its own"),
        ("e8m0", "cannot be a quantization target"),
        ("", "empty scheme"),
    ],
)
def test_nonsense_schemes_get_one_clear_message(spec, message):
    with pytest.raises(NumfmtError, match=message):
        parse_scheme(spec)


def test_search_needs_a_loss():
    with pytest.raises(NumfmtError, match="needs loss"):
        scheme("int8", method="search")
    s = scheme("int8", method="search", loss=lambda a, b: np.mean((a - b) ** 2, axis=1))
    assert s.method == "search"
