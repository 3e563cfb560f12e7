"""Reading arithmetic expressions into syntax trees, exactly and without evaluating them."""

import builtins
import doctest
from fractions import Fraction

import pytest

import numfmt.arith.expr as expr_module
from numfmt.arith.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    Binary,
    Call,
    Node,
    Number,
    Unary,
    operations,
    parse_expression,
    to_text,
)
from numfmt.errors import NumfmtError, ParseError
from numfmt.formats.value import parse_value


def N(text: str) -> Number:
    return Number(text, parse_value(text))


def B(op: str, left: Node, right: Node) -> Binary:
    return Binary(op, left, right)


def neg(operand: Node) -> Unary:
    return Unary("-", operand)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        pytest.param("1", N("1"), id="number"),
        pytest.param("1 - 2 - 3", B("-", B("-", N("1"), N("2")), N("3")), id="minus-left-assoc"),
        pytest.param("1 / 2 / 3", B("/", B("/", N("1"), N("2")), N("3")), id="div-left-assoc"),
        pytest.param("1 - 2 * 3", B("-", N("1"), B("*", N("2"), N("3"))), id="mul-before-minus"),
        pytest.param("1 * 2 - 3", B("-", B("*", N("1"), N("2")), N("3")), id="mul-then-minus"),
        pytest.param(
            "1 - 2 * 3 - 4",
            B("-", B("-", N("1"), B("*", N("2"), N("3"))), N("4")),
            id="mixed-chain",
        ),
        pytest.param(
            "1 + 2 / 3 * 4",
            B("+", N("1"), B("*", B("/", N("2"), N("3")), N("4"))),
            id="div-mul-left-assoc",
        ),
        pytest.param("2 * (3 + 4)", B("*", N("2"), B("+", N("3"), N("4"))), id="parentheses"),
        pytest.param("((2))", N("2"), id="redundant-parentheses"),
        pytest.param("-2 * 3", B("*", neg(N("2")), N("3")), id="sign-binds-tighter"),
        pytest.param("2 * -3", B("*", N("2"), neg(N("3"))), id="sign-after-operator"),
        pytest.param("--1", neg(neg(N("1"))), id="double-minus"),
        pytest.param("+1", N("1"), id="plus-sign-dropped"),
        pytest.param("-+-1", neg(neg(N("1"))), id="mixed-signs"),
        pytest.param("-(1)", neg(N("1")), id="minus-group"),
        pytest.param("1 - -2", B("-", N("1"), neg(N("2"))), id="minus-minus"),
        pytest.param(
            "fma(0.5 + 1, 2, sqrt(4))",
            Call("fma", (B("+", N("0.5"), N("1")), N("2"), Call("sqrt", (N("4"),)))),
            id="calls",
        ),
        pytest.param("ABS(-1)", Call("abs", (neg(N("1")),)), id="function-name-any-case"),
        pytest.param(" \t1+\n2 ", B("+", N("1"), N("2")), id="whitespace-ignored"),
    ],
)
def test_tree(text, tree):
    assert parse_expression(text) == tree


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        pytest.param("1 + 2^-60", B("+", N("1"), N("2^-60")), id="power-sign-belongs"),
        pytest.param("2**-10*3", B("*", N("2**-10"), N("3")), id="starstar-power-then-times"),
        pytest.param("2^(-10) - 1", B("-", N("2^(-10)"), N("1")), id="power-parenthesized"),
        pytest.param("2 ^ -10", N("2^-10"), id="power-with-spaces"),
        pytest.param("-2^2", neg(N("2^2")), id="sign-before-power"),
        pytest.param("1e-3-1", B("-", N("1e-3"), N("1")), id="exponent-sign-belongs"),
        pytest.param("1E+3+1", B("+", N("1E+3"), N("1")), id="exponent-plus"),
        pytest.param("0x1.8p3", N("0x1.8p3"), id="hex-float"),
        pytest.param("0x1p-3-1", B("-", N("0x1p-3"), N("1")), id="hex-exponent-sign"),
        pytest.param("0x1e-3", B("-", N("0x1e"), N("3")), id="hex-e-is-a-digit"),
        pytest.param("1/3", B("/", N("1"), N("3")), id="fraction-is-division"),
        pytest.param("inf - nan", B("-", N("inf"), N("nan")), id="inf-nan"),
    ],
)
def test_number_tokens_inside_expressions(text, tree):
    assert parse_expression(text) == tree


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("0.1", Fraction(1, 10)),
        ("3.14", Fraction(157, 50)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("1e-8", Fraction(1, 10**8)),
        ("1E+3", Fraction(1000)),
        ("0x1.8p3", Fraction(12)),
        ("0X1.8P3", Fraction(12)),
        ("0x10", Fraction(16)),
        ("0b101.1", Fraction(11, 2)),
        ("2^-10", Fraction(1, 1024)),
        ("2**-10", Fraction(1, 1024)),
        ("2^(-10)", Fraction(1, 1024)),
        ("2^+3", Fraction(8)),
        ("2^-60", Fraction(1, 2**60)),
        ("1_000", Fraction(1000)),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_number_forms_are_exact(text, exact):
    tree = parse_expression(f"1 + {text} * 2")
    number = tree.right.left
    assert number.text == text
    assert number.value.fraction == exact


@pytest.mark.parametrize(
    ("text", "kind", "negative"),
    [("inf", "inf", False), ("Infinity", "inf", False), ("NAN", "nan", False)],
    ids=["inf", "Infinity", "NAN"],
)
def test_special_numbers_are_numbers_not_names(text, kind, negative):
    number = parse_expression(f"{text} * 2").left
    assert isinstance(number, Number)
    assert (number.value.kind, number.value.negative) == (kind, negative)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0.5 + (512 + 512.5)", "0.5 + (512 + 512.5)"),
        ("(1+2)*3", "(1 + 2) * 3"),
        ("-(1)", "-1"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("(1 - 2) - 3", "1 - 2 - 3"),
        ("1 + (2 * 3)", "1 + 2 * 3"),
        ("(1 * 2) / 3", "1 * 2 / 3"),
        ("1 / (2 * 3)", "1 / (2 * 3)"),
        ("-(2 * 3)", "-(2 * 3)"),
        ("(-2) * 3", "-2 * 3"),
        ("--1", "--1"),
        ("fma(1,2,3)", "fma(1, 2, 3)"),
        ("SQRT( (4) )", "sqrt(4)"),
        ("1e-3-1", "1e-3 - 1"),
        ("2 ** -10", "2**-10"),
        ("abs(-(0.1 + 0.2)) * 2^-10", "abs(-(0.1 + 0.2)) * 2^-10"),
    ],
    ids=lambda x: x,
)
def test_to_text(text, canonical):
    assert to_text(parse_expression(text)) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "0.1 + 0.2",
        "1 - (2 - 3) - 4",
        "(1 + 2) * (3 - 4) / -5",
        "1 / (2 / 3)",
        "-(1 + 2) * --3",
        "fma(0.5 + 1, 2, sqrt(4)) - abs(-0x1.8p3)",
        "2^-60 + 1e-8 * 0b101.1 - inf / nan",
        "sqrt(sqrt(sqrt(2)))",
    ],
    ids=lambda x: x,
)
def test_to_text_round_trip(text):
    tree = parse_expression(text)
    assert parse_expression(to_text(tree)) == tree
    assert to_text(parse_expression(to_text(tree))) == to_text(tree)


def test_to_text_of_hand_built_trees():
    tree = B("-", N("1"), B("+", neg(B("*", N("2"), N("3"))), Unary("+", N("4"))))
    assert to_text(tree) == "1 - (-(2 * 3) + +4)"


def test_operations_in_evaluation_order():
    tree = parse_expression("fma(0.5 + 1, 2, sqrt(4))")
    assert [to_text(op) for op in operations(tree)] == [
        "0.5 + 1",
        "sqrt(4)",
        "fma(0.5 + 1, 2, sqrt(4))",
    ]
    assert operations(tree)[-1] is tree


def test_operations_include_negation_but_no_numbers():
    tree = parse_expression("-(1 - 2) * -3 + 4")
    assert [to_text(op) for op in operations(tree)] == [
        "1 - 2",
        "-(1 - 2)",
        "-3",
        "-(1 - 2) * -3",
        "-(1 - 2) * -3 + 4",
    ]
    assert operations(parse_expression("7")) == []
    assert operations(Unary("+", N("1"))) == []


def test_node_is_a_union_of_the_node_types():
    assert isinstance(parse_expression("1"), Node)
    assert not isinstance("1", Node)


COLUMN = "at column"
KNOWN = ("abs(x)", "fma(a, b, c)", "sqrt(x)")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param("", ["empty"], id="empty"),
        pytest.param("   \t", ["empty"], id="blank"),
        pytest.param(
            "1 + * 2",
            ["'1 + * 2'", "column 5 ('*')", "expected a number"],
            id="operator-where-operand",
        ),
        pytest.param("(1 + 2", ["column 1 ('(')", "never closed"], id="unclosed-paren"),
        pytest.param(
            "sqrt(1 + (2)", ["column 5 ('(')", "'(' of sqrt is never closed"], id="unclosed-call"
        ),
        pytest.param("1 + 2)", ["column 6 (')')", "closes no '('"], id="unexpected-close"),
        pytest.param("())", ["column 2 (')')", "expected a number"], id="empty-parentheses"),
        pytest.param("1 +", ["at the end", "after '+'"], id="trailing-plus"),
        pytest.param("2 *", ["at the end", "after '*'"], id="trailing-times"),
        pytest.param("1 -  ", ["at the end", "after '-'"], id="trailing-minus-space"),
        pytest.param("1 2", ["column 3 ('2')", "two numbers in a row"], id="two-numbers"),
        pytest.param(
            "1 + 2 inf", ["column 7 ('inf')", "two numbers in a row"], id="number-then-inf"
        ),
        pytest.param(
            "2(3)", ["column 2 ('(')", "expected an operator"], id="implicit-multiplication"
        ),
        pytest.param("1;", ["column 2 (';')", "no place", *KNOWN], id="semicolon"),
        pytest.param("`1`", ["column 1 ('`')"], id="backtick"),
        pytest.param("a = 1", ["column 3 ('=')"], id="equals"),
        pytest.param("x + 1", ["column 1 ('x')", "unknown name 'x'", *KNOWN], id="unknown-name"),
        pytest.param("1 + pi", ["column 5 ('pi')", "unknown name 'pi'"], id="unknown-constant"),
        pytest.param("sqrt", ["column 1 ('sqrt')", "write sqrt(x)"], id="function-without-call"),
        pytest.param(
            "fma(1, 2)",
            ["column 1 ('fma')", "fma takes 3 arguments: fma(a, b, c)", "not 2"],
            id="fma-two-args",
        ),
        pytest.param("sqrt(1, 2)", ["sqrt takes 1 argument: sqrt(x)", "not 2"], id="sqrt-two-args"),
        pytest.param("abs()", ["abs takes 1 argument: abs(x)", "not 0"], id="abs-no-args"),
        pytest.param("sqrt(1,)", ["column 8 (')')", "after ','"], id="trailing-comma-in-call"),
        pytest.param(
            "1.2.3", ["column 1 ('1.2.3')", "cannot read '1.2.3' as a number"], id="two-points"
        ),
        pytest.param("1 + 1e", ["column 5 ('1e')"], id="exponent-without-digits"),
        pytest.param("0x + 1", ["column 1 ('0x')"], id="hex-without-digits"),
        pytest.param("0b102", ["column 1 ('0b102')"], id="bad-binary-digit"),
        pytest.param("3x", ["column 1 ('3x')"], id="number-glued-to-name"),
        pytest.param(
            "1 + 0^-1", ["column 5 ('0^-1')", "divides by zero"], id="zero-to-negative-power"
        ),
        pytest.param("2^-200000", ["column 1", "out of range"], id="huge-exponent"),
        pytest.param("0,1 + 0,2", ["column 2 (',')", "decimal mark is a dot"], id="decimal-comma"),
        pytest.param(
            "1, 2", ["column 2 (',')", "separates a function's arguments"], id="comma-outside-call"
        ),
        pytest.param(
            "fma(0,1, 2, 3)",
            ["fma takes 3 arguments", "not 4", "decimal mark is a dot"],
            id="decimal-comma-in-call",
        ),
        pytest.param(
            "(1+2)^3", ["column 6 ('^')", "powers are only of the form 2^-10"], id="power-of-group"
        ),
        pytest.param(
            "x^2.5", ["column 2 ('^')", "powers are only of the form 2^-10"], id="power-of-name"
        ),
        pytest.param("2.5^2", ["column 4 ('^')", "whole number"], id="power-of-decimal"),
        pytest.param("2^2.5", ["column 1 ('2^2.5')", "whole number"], id="decimal-exponent"),
        pytest.param("2^3^4", ["column 4 ('^')"], id="power-of-power"),
        pytest.param("(1+2)**3", ["column 6 ('**')", "powers are only"], id="starstar-of-group"),
        pytest.param("1 ** x", ["column 3 ('**')"], id="starstar-of-name"),
        pytest.param("1\n+", ["'1 +'", "at the end"], id="newline-shown-as-space"),
    ],
)
def test_errors_say_where(text, fragments):
    with pytest.raises(ParseError) as info:
        parse_expression(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, NumfmtError)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "__import__",
        "().__class__",
        "lambda: 0",
        "1 if 1 else 2",
        "open('x').read()",
        "[1, 2]",
        "1 == 1",
        "f'{1}'",
        "sqrt.__globals__",
        "1 ; import os",
    ],
    ids=lambda x: x,
)
def test_python_is_not_an_expression(text):
    with pytest.raises(ParseError, match="cannot read the expression"):
        parse_expression(text)


def test_nothing_is_evaluated(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("user text reached Python")

    for name in ("eval", "exec", "compile", "__import__"):
        monkeypatch.setattr(builtins, name, refuse)
    for text in ("0.1 + 0.2", "fma(1, 2^-10, -sqrt(0x1.8p3)) / abs(1e-3-1)", "inf - nan"):
        tree = parse_expression(text)
        to_text(tree)
        operations(tree)
    with pytest.raises(ParseError):
        parse_expression("__import__('os').system('true')")


def test_nesting_up_to_the_limit_is_read():
    deep = "(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH
    assert parse_expression(deep) == N("1")
    calls = "sqrt(" * MAX_DEPTH + "2" + ")" * MAX_DEPTH
    assert len(operations(parse_expression(calls))) == MAX_DEPTH
    signs = "-" * MAX_DEPTH + "1"
    assert len(operations(parse_expression(signs))) == MAX_DEPTH


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1),
        "(" * 5000,
        "sqrt(" * (MAX_DEPTH + 1) + "2" + ")" * (MAX_DEPTH + 1),
        "-" * 5000 + "1",
        "1" + "+1" * 4000,
        "abs(" * 150 + "1" + "*1" * 100 + ")" * 150,
    ],
    ids=["parentheses", "unclosed-parentheses", "calls", "signs", "long-sum", "calls-and-products"],
)
def test_too_deep_is_refused_without_recursion_error(text):
    with pytest.raises(ParseError, match=f"more than {MAX_DEPTH}"):
        parse_expression(text)


def test_too_long_is_refused():
    with pytest.raises(ParseError, match="at most 10 000"):
        parse_expression("1" + " " * MAX_LENGTH)
    assert parse_expression("1" + " " * (MAX_LENGTH - 1)) == N("1")


def test_docstring_examples_run():
    result = doctest.testmod(expr_module)
    assert result.attempted > 0
    assert result.failed == 0
