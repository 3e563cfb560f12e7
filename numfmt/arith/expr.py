"""Reading an arithmetic expression, such as ``numfmt calc "0.1 + 0.2"``, into a syntax tree.

Grammar (spaces between tokens are ignored)::

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/') unary)*
    unary := ('-' | '+') unary | atom
    atom  := NUMBER | NAME '(' expr (',' expr)* ')' | '(' expr ')'

``+ - * /`` are left-associative, ``*`` and ``/`` bind tighter than ``+`` and ``-``, and a sign
binds tighter than both (``-2 * 3`` is ``(-2) * 3``); a ``+`` sign is dropped. The functions are
``fma(a, b, c)``, ``sqrt(x)`` and ``abs(x)`` (any case). A NUMBER is any form
:func:`numfmt.formats.value.parse_value` reads, read exactly: ``0.1``, ``.5``, ``1e-8``,
``0x1.8p3``, ``0b101.1``, ``inf``, ``nan`` and the power ``2^-10`` (``2**-10``, ``2^(-10)``: a
whole number to a whole power, the only power there is). A sign right after ``e`` in a decimal,
``p`` in a hexadecimal float or ``^`` in a power belongs to the number (``1e-3-1`` is
``1e-3`` minus 1). The fraction form ``1/3`` is not one number here: ``/`` divides.

Nothing is evaluated: the text is cut into tokens and parsed by hand, never handed to Python
(no ``eval``, ``exec``, ``compile`` or ``ast``), so ``__import__('os')`` is just a bad expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

from numfmt._display import grouped
from numfmt.errors import ParseError
from numfmt.formats.value import ExactValue, parse_value

#: The functions, and how each is called.
FUNCTIONS = {"abs": "abs(x)", "fma": "fma(a, b, c)", "sqrt": "sqrt(x)"}
MAX_LENGTH = 10_000  #: the longest expression read, in characters
MAX_DEPTH = 200  #: the most parentheses, or operations, inside one another

_INT = r"[0-9][0-9_]*"
_NUMBER_RE = re.compile(
    rf"(?P<pow>{_INT}\s*(?:\^|\*\*)\s*(?:[+-]?{_INT}|\(\s*[+-]?{_INT}\s*\)))"
    r"|0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?"
    r"|0[bB][01_]*(?:\.[01_]*)?"
    rf"|(?:{_INT}\.?[0-9_]*|\.{_INT})(?:[eE][+-]?{_INT})?"
)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_RE = re.compile(r"[A-Za-z0-9_.]*")
_POWER_ONLY = "powers are only of the form 2^-10 (or 2**-10): a whole number to a whole power"


@dataclass(frozen=True)
class Number:
    """A number as written (``text``) and its exact value.

    Examples:
        >>> parse_expression("0.1").value.magnitude
        Fraction(1, 10)
    """

    text: str
    value: ExactValue


@dataclass(frozen=True)
class Unary:
    """A sign before an operand; the parser builds only ``-``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """``left op right`` with op one of ``+ - * /``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """A function (``fma``, ``sqrt`` or ``abs``, lower case) applied to its arguments."""

    name: str
    args: tuple[Node, ...]


Node = Number | Unary | Binary | Call


class _Tok(NamedTuple):
    kind: str  # "num", "name", "op" (also parentheses and commas) or "end"
    text: str
    col: int  # 1-based


def _fail(text: str, tok: _Tok, why: str) -> ParseError:
    shown = "".join(c if c.isprintable() else " " for c in text)  # one for one: columns hold
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    at = "at the end" if tok.kind == "end" else f"at column {tok.col} ('{tok.text}')"
    return ParseError(f"cannot read the expression '{shown}' {at}: {why}")


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, nesting = 0, 0
    while i < len(text):
        ch, col = text[i], i + 1
        if ch.isspace():
            i += 1
        elif ch in "0123456789." and (m := _NUMBER_RE.match(text, i)):
            end = _WORD_RE.match(text, m.end()).end()  # type: ignore[union-attr]
            word = "".join(text[i:end].split())  # 2 ^ -10 -> 2^-10
            if m.group("pow") and end > m.end():  # 2^-10.5
                raise _fail(text, _Tok("num", word, col), _POWER_ONLY)
            if text.startswith(("^", "**"), m.end()):  # 2.5^2
                raise _fail(text, _Tok("op", text[m.end()], m.end() + 1), _POWER_ONLY)
            out.append(_Tok("num", word, col))
            i = end
        elif m := _NAME_RE.match(text, i):
            kind = "num" if m.group().lower() in ("inf", "infinity", "nan") else "name"
            out.append(_Tok(kind, m.group(), col))
            i = m.end()
        elif ch == "^" or text.startswith("**", i):  # (1+2)^3
            raise _fail(text, _Tok("op", text[i : i + 1 + (ch == "*")], col), _POWER_ONLY)
        elif ch in "+-*/(),":
            nesting += (ch == "(") - (ch == ")")
            if nesting > MAX_DEPTH:
                raise _fail(
                    text, _Tok("op", ch, col), f"parentheses nest more than {MAX_DEPTH} levels deep"
                )
            out.append(_Tok("op", ch, col))
            i += 1
        else:
            known = ", ".join(FUNCTIONS.values())
            why = f"'{ch}' has no place in an expression of numbers, + - * /, ( ) and {known}"
            raise _fail(text, _Tok("?", ch, col), why)
    return [*out, _Tok("end", "", len(text) + 1)]


class _Parser:
    """Recursive descent; each step returns a node and how many operations nest in it."""

    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i = text, _tokens(text), 0

    def fail(self, tok: _Tok, why: str) -> ParseError:
        return _fail(self.text, tok, why)

    def next(self) -> _Tok:
        self.i += 1
        return self.toks[self.i - 1]

    def at(self, *texts: str) -> bool:
        return self.toks[self.i].text in texts  # no number or name is spelt + - * / ( ) ,

    def node(self, tok: _Tok, node: Node, depth: int) -> tuple[Node, int]:
        if depth > MAX_DEPTH:
            raise self.fail(tok, f"it nests more than {MAX_DEPTH} operations inside one another")
        return node, depth

    def expr(self) -> tuple[Node, int]:
        """expr and term in one loop, so that a group in parentheses costs two stack frames."""
        pending: tuple[Node, int, _Tok] | None = None  # the sum so far, and the + or - after it
        term, depth = self.operand()
        while self.at("+", "-", "*", "/"):
            op = self.next()
            if op.text in "*/":
                right, d = self.operand()
                term, depth = self.node(op, Binary(op.text, term, right), max(depth, d) + 1)
                continue
            if pending:
                left, d, prev = pending
                term, depth = self.node(prev, Binary(prev.text, left, term), max(depth, d) + 1)
            pending = (term, depth, op)
            term, depth = self.operand()
        if pending:
            left, d, prev = pending
            term, depth = self.node(prev, Binary(prev.text, left, term), max(depth, d) + 1)
        return term, depth

    def operand(self) -> tuple[Node, int]:
        """unary and atom: signs, then a number, a call or a group in parentheses."""
        signs = []
        while self.at("+", "-"):
            signs.append(self.next())
        tok = self.next()
        node: Node
        if tok.kind == "num":
            try:
                node, depth = Number(tok.text, parse_value(tok.text)), 0
            except ParseError as e:
                raise self.fail(tok, str(e)) from None
        elif tok.text == "(":
            node, depth = self.expr()
            self.close(tok, "'('")
        elif tok.kind == "name":
            node, depth = self.call(tok)
        else:
            prev = self.toks[self.i - 2].text if self.i > 1 else ""
            raise self.fail(
                tok, "expected a number, '(' or a function" + f" after '{prev}'" * bool(prev)
            )
        for sign in reversed(signs):
            if sign.text == "-":
                node, depth = self.node(sign, Unary("-", node), depth + 1)
        return node, depth

    def call(self, tok: _Tok) -> tuple[Node, int]:
        name = tok.text.lower()
        if name not in FUNCTIONS:
            known = ", ".join(FUNCTIONS.values())
            raise self.fail(tok, f"unknown name '{tok.text}'; the functions are {known}")
        if not self.at("("):
            raise self.fail(tok, f"{name} is a function: write {FUNCTIONS[name]}")
        paren, args, commas, depth = self.next(), [], [], 0
        more = not self.at(")")  # sqrt() has no arguments: the count below says so
        while more:
            arg, d = self.expr()
            args.append(arg)
            depth = max(depth, d)
            if more := self.at(","):
                commas.append(self.next())
        self.close(paren, f"'(' of {name}")
        arity = FUNCTIONS[name].count(",") + 1
        if len(args) != arity:
            why = f"{name} takes {arity} argument{'s' * (arity > 1)}: {FUNCTIONS[name]}, not "
            why += str(len(args)) + " (the decimal mark is a dot)" * any(map(self.tight, commas))
            raise self.fail(tok, why)
        return self.node(tok, Call(name, tuple(args)), depth + 1)

    def close(self, paren: _Tok, what: str) -> None:
        if self.at(")"):
            self.i += 1
        elif self.toks[self.i].kind == "end":
            raise self.fail(paren, f"this {what} is never closed")
        else:
            self.unexpected()

    def tight(self, comma: _Tok) -> bool:
        """Whether the comma sits between two digits, as a decimal comma does (0,1)."""
        i = comma.col - 1
        return self.text[i - 1 : i].isdigit() and self.text[i + 1 : i + 2].isdigit()

    def unexpected(self) -> NoReturn:
        """The next token follows a complete operand but is no operator."""
        tok = self.toks[self.i]
        if tok.text == ")":
            raise self.fail(tok, "this ')' closes no '('")
        if tok.text == ",":
            dot = "the decimal mark is a dot (0.1, not 0,1); " * self.tight(tok)
            raise self.fail(tok, dot + "a ',' only separates a function's arguments")
        if tok.kind == "num" and self.toks[self.i - 1].kind == "num":
            raise self.fail(tok, "two numbers in a row need an operator (+ - * /) between them")
        raise self.fail(tok, "expected an operator (+ - * /) before it")


def parse_expression(text: str) -> Node:
    """The syntax tree of an arithmetic expression (grammar in the module docstring).

    Raises:
        ParseError: empty or too long text, an unknown character or name, a bad number,
            unbalanced parentheses, a missing operand or operator, or a function given the
            wrong number of arguments; the message names the column and the token.

    Examples:
        >>> parse_expression("-2 * 3")  # doctest: +ELLIPSIS
        Binary(op='*', left=Unary(op='-', operand=Number(text='2', ...)), right=Number(text='3'...
        >>> to_text(parse_expression("fma(0.1,(2),  2^-10)"))
        'fma(0.1, 2, 2^-10)'
    """
    if len(text) > MAX_LENGTH:
        raise ParseError(
            f"the expression is {grouped(len(text))} characters long; "
            f"numfmt reads at most {grouped(MAX_LENGTH)}"
        )
    if not text.strip():
        raise ParseError("the expression is empty: write one such as 0.1 + 0.2")
    parser = _Parser(text)
    node, _ = parser.expr()
    if parser.toks[parser.i].kind != "end":
        parser.unexpected()
    return node


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def to_text(node: Node) -> str:
    """The expression written back with single spaces and only the parentheses it needs.

    Examples:
        >>> to_text(parse_expression("(1+2)*3 - (4 - 5) - -(6)"))
        '(1 + 2) * 3 - (4 - 5) - -6'
    """
    if isinstance(node, Number):
        return node.text
    if isinstance(node, Unary):
        inner = to_text(node.operand)
        return node.op + (f"({inner})" if isinstance(node.operand, Binary) else inner)
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_text(a) for a in node.args)})"
    left, right, prec = to_text(node.left), to_text(node.right), _PREC[node.op]
    if isinstance(node.left, Binary) and _PREC[node.left.op] < prec:
        left = f"({left})"
    if isinstance(node.right, Binary) and _PREC[node.right.op] <= prec:
        right = f"({right})"
    return f"{left} {node.op} {right}"


def operations(node: Node) -> list[Node]:
    """The operations (Binary, Call, negation) in the order they are done: operands first.

    Examples:
        >>> [to_text(op) for op in operations(parse_expression("sqrt(2) * -(1 + 3)"))]
        ['sqrt(2)', '1 + 3', '-(1 + 3)', 'sqrt(2) * -(1 + 3)']
    """
    out: list[Node] = []
    if isinstance(node, Binary):
        out += operations(node.left) + operations(node.right) + [node]
    elif isinstance(node, Call):
        out += [op for arg in node.args for op in operations(arg)] + [node]
    elif isinstance(node, Unary):
        out += operations(node.operand) + ([node] if node.op == "-" else [])
    return out
