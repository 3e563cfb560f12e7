"""Schemes: targets, ranges of codes, presets, parsing and the messages for nonsense."""

import re
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


# -- canonical strings --------------------------------------------------------------------------
from hypothesis import given, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from numfmt.quant import QuantScheme  # noqa: E402

_targets = st.sampled_from(
    [
        "int2",
        "int3",
        "int4",
        "int8",
        "int16",
        "int32",
        "fp8_e4m3",
        "fp8_e5m2",
        "fp4",
        "e3m2",
        "bf16",
        "nf4",
    ]
)
_granularity = st.sampled_from(
    ["tensor", "channel", "channel:1", "group:32", "group:128", "group:64:0", "token"]
)
_method = st.sampled_from(
    [
        "minmax",
        "percentile:99.9",
        "percentile:99.99",
        "percentile:100",
        "mse",
        "mse:200",
        "mse:100",
        "entropy",
        "entropy:512",
        "l2_histogram",
        "l2_histogram:2048",
    ]
)


@st.composite
def _schemes(draw) -> QuantScheme:
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(PRESETS)))
        spec = name
        if PRESETS[name].scale_rule != "gguf":
            spec += "/" + draw(_method)
            if draw(st.booleans()):
                spec += "/stochastic"
        return parse_scheme(spec)
    target = draw(_targets)
    parts = [target]
    if target.startswith("int"):
        parts.append(draw(st.sampled_from(["sym", "asym", "min", "full", "sym"])))
    parts.append(draw(_granularity))
    parts.append(draw(_method))
    if draw(st.booleans()):
        parts.append("scale:" + draw(st.sampled_from(["fp16", "bf16", "e8m0", "e4m3", "fp32"])))
    if draw(st.booleans()):
        parts.append("stochastic")
    try:
        return parse_scheme("/".join(parts))
    except NumfmtError:  # a combination that makes no scheme (nf4 groups its own ...)
        reject()


@settings(max_examples=400, deadline=None)
@given(s=_schemes())
def test_every_scheme_reads_back_from_its_string(s):
    text = str(s)
    assert parse_scheme(text) == s
    assert str(parse_scheme(text)) == text  # and the string is canonical
    assert " " not in text


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("int8/sym/tensor/minmax/scale:fp32/nearest-even", "int8"),
        ("mxfp4 mse", "mxfp4/mse"),
        ("nvfp4/percentile:99.9", "nvfp4/percentile:99.9"),
        ("mxint8/mse:100", "mxint8/mse"),
        ("int4/asym/group:128/mse:50/scale:float16", "int4/asym/group:128/scale:float16/mse:50"),
        ("uint8", "int8/asym"),
        ("int4/min/group:32/scale:fp16", "int4/min/group:32/scale:float16"),
    ],
)
def test_canonical_strings(spec, canonical):
    assert str(parse_scheme(spec)) == canonical


def test_presets_keep_their_blocks():
    with pytest.raises(NumfmtError, match="fixes its own"):
        scheme("mxfp4", granularity="group:64")
    with pytest.raises(NumfmtError, match="fixes its own"):
        scheme("q4_1", mapping="asym")
    assert scheme("mxfp4", granularity="group:32") is PRESETS["mxfp4"]  # its own: fine
    assert scheme("mxfp4", method="mse").preset == "mxfp4"


# -- a part of each kind, once --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("int4/group:32/group:64", "gives the granularity twice (group:32 and group:64)"),
        ("int4/channel/group:32", "gives the granularity twice (channel and group:32)"),
        ("int4/tensor/tensor", "gives the granularity twice (tensor and tensor)"),
        ("int4/sym/asym", "gives the mapping twice (sym and asym)"),
        ("int4/asym/min", "gives the mapping twice (asym and min)"),
        ("int4/mse/minmax", "gives the method twice (mse and minmax)"),
        ("int4/percentile:99/percentile:99.9", "gives the method twice"),
        ("int4/scale:fp16/scale:bf16", "gives the scale format twice (scale:fp16 and scale:bf16)"),
        ("int4/stochastic/nearest-even", "gives the rounding twice (stochastic and nearest-even)"),
        ("int4/full/full", "gives the code range twice (full and full)"),
        ("int4/rule:mx/rule:range", "gives the scale rule twice (rule:mx and rule:range)"),
        ("mxfp4/mse/entropy", "gives the method twice (mse and entropy)"),
    ],
)
def test_a_scheme_that_gives_a_part_twice_is_refused_naming_both(spec, message):
    with pytest.raises(NumfmtError, match=re.escape(message)):
        parse_scheme(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("int4/asym/full", "asym codes already run from 0 to 2^b - 1"),
        ("int4/full/min", "min codes already run from 0 to 2^b - 1"),
        ("uint8/full", "asym codes already run"),
        ("fp8_e4m3/full", "fp8_e4m3 is not an integer grid"),
        ("uint8/sym", "uint8 codes are unsigned"),
        ("int4/asym:3", "'asym' takes no value"),
        ("int4/stochastic:1", "'stochastic' takes no value"),
        ("q8_0/full", "its code range is restricted, not full"),
        ("mxfp4/group:16", "its granularity is group:32, not group:16"),
        ("q4_1/asym", "its mapping is min, not asym"),
    ],
)
def test_parts_that_would_be_dropped_are_refused(spec, message):
    with pytest.raises(NumfmtError, match=re.escape(message)):
        parse_scheme(spec)


def test_parts_that_agree_still_read():
    assert str(parse_scheme("int8/sym/full")) == "int8/full"
    assert str(parse_scheme("uint4/min")) == "int4/min"
    assert parse_scheme("q4_0/full") is PRESETS["q4_0"]  # q4_0's codes run from -8 already
    assert parse_scheme("mxfp4/group:32/scale:e8m0") is PRESETS["mxfp4"]
    assert scheme("uint8", mapping="asym") == parse_scheme("int8/asym")
