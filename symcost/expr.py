"""Size expressions from spec strings -> sympy, through a whitelist.

A spec string is parsed by Python's `ast` (which only parses; nothing runs) and each
node is checked against a short whitelist: integer literals, declared dimension names,
`+ - * / // **`, unary minus, parentheses and `min max ceil floor`. Everything else —
attribute access, calls of other names, subscripts, lambdas, comprehensions, strings,
floats — is refused. Nothing from a spec ever reaches `eval` or `sympify`.

Limits keep hostile input cheap: at most MAX_CHARS characters, MAX_NODES syntax nodes,
literals below MAX_LITERAL, exponents that are integer constants up to MAX_EXPONENT, at most
MAX_TERMS terms once expanded (so that products of sizes cannot blow up), and no dim raised past
MAX_DEGREE once derived dims are substituted.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

import sympy

from .limits import MAX_LITERAL  # shared with the command line

MAX_CHARS = 500
MAX_NODES = 200
MAX_EXPONENT = 16
MAX_TERMS = 16  # terms once expanded, derived dims substituted: (a + b + c)**16 would be 153
# the power of any one dim once derived dims are substituted: past 60, a dim of 2 already exceeds
# 10**18 (every size's bound), and sympy cannot order, factor or solve a polynomial of degree
# 65,536 (b: a**16, c: b**16, e: c**16, f: e**16) in bounded time or memory
MAX_DEGREE = 60

FUNCTIONS = {
    "min": (sympy.Min, 2),
    "max": (sympy.Max, 2),
    "ceil": (sympy.ceiling, 1),
    "floor": (sympy.floor, 1),
}

_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
}

_NAMES_OF_NODES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.JoinedStr: "f-strings",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "assignment expressions",
}


class ExprError(ValueError):
    """An expression outside the whitelist (a ValueError, so pydantic reports it at its field)."""


def parse(value: object, names: Mapping[str, sympy.Symbol]) -> sympy.Expr:
    """Parse an integer or an expression string over `names` into an exact sympy expression."""
    if isinstance(value, bool):
        raise ExprError(f"expected a size (integer or expression), got {str(value).lower()}")
    if isinstance(value, int):
        return _literal(value)
    if isinstance(value, float):
        raise ExprError(f"{value!r} is not an integer; sizes are exact (write a fraction such as 8/3)")
    if not isinstance(value, str):
        raise ExprError(f"expected a size (integer or expression), got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ExprError("empty expression")
    if len(text) > MAX_CHARS:
        raise ExprError(f"expression longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ExprError(f"cannot parse {text!r}: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError(f"cannot parse {text!r}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExprError(f"expression has more than {MAX_NODES} parts")
    result = _Walker(names, text).visit(tree.body)
    if result.has(sympy.zoo, sympy.nan, sympy.oo):
        raise ExprError(f"{text!r} divides by zero")
    check_terms(result, text)
    return result


def expanded_terms(e: sympy.Expr) -> int:
    """An upper bound on the terms of expand(e), computed without expanding. What is inside a
    floor, ceiling, min, max or denominator counts as expanded too: leading terms drop the
    floor and keep one argument of a min (then expand), and exact integer forms expand the
    numerator and denominator under each floor."""
    if e.is_Add:
        return sum(expanded_terms(a) for a in e.args)
    if e.is_Mul:
        return math.prod(expanded_terms(a) for a in e.args)
    if e.is_Pow and e.exp.is_Integer:
        k, n = expanded_terms(e.base), abs(int(e.exp))
        return math.comb(k + n - 1, n)
    if isinstance(e, sympy.floor | sympy.ceiling | sympy.Min | sympy.Max):
        return max(expanded_terms(a) for a in e.args)
    return 1


def check_terms(e: sympy.Expr, text: object) -> None:
    """Refuse what would expand past MAX_TERMS terms (formulas multiply sizes together, and an
    expansion that explodes would hang the derivation rather than fail), or raise a dim past
    MAX_DEGREE."""
    if expanded_terms(e) > MAX_TERMS:
        raise ExprError(f"{text!r} expands to more than {MAX_TERMS} terms; sizes are short polynomials")
    powers = [p for p in e.atoms(sympy.Pow) if p.exp.is_Integer and abs(p.exp) > MAX_DEGREE]
    if powers:
        p = max(powers, key=lambda p: abs(p.exp))
        raise ExprError(f"{text!r} raises {p.base} to the power {p.exp} once derived dims are substituted; the "
                        f"limit is {MAX_DEGREE} (past it, {p.base} = 2 already exceeds 10**18)")


def _literal(n: int) -> sympy.Integer:
    if abs(n) >= MAX_LITERAL:
        raise ExprError(f"integer {n if len(str(n)) < 30 else str(n)[:20] + '…'} is too large (limit 10**18)")
    return sympy.Integer(n)


class _Walker:
    def __init__(self, names: Mapping[str, sympy.Symbol], text: str) -> None:
        self.names = names
        self.text = text

    def refuse(self, what: str) -> ExprError:
        return ExprError(
            f"{what} not allowed in {self.text!r}; a size uses integers, dim names, "
            "+ - * / // ** ( ) and min max ceil floor"
        )

    def visit(self, node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Constant):
            if type(node.value) is int:
                return _literal(node.value)
            if isinstance(node.value, float):
                raise ExprError(f"{node.value!r} in {self.text!r} is not an integer; sizes are exact")
            raise self.refuse(f"the literal {node.value!r} is")
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                declared = ", ".join(sorted(self.names)) or "none"
                raise ExprError(f"unknown name {node.id!r} in {self.text!r}; declared dims: {declared}")
            return self.names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.visit(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return self.power(node)
            op = _OPERATORS.get(type(node.op))
            if op is None:
                raise self.refuse(f"the operator {type(node.op).__name__} is")
            return self.bounded(op(self.visit(node.left), self.visit(node.right)))
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.refuse(f"{_NAMES_OF_NODES.get(type(node), type(node).__name__)} are")

    def power(self, node: ast.BinOp) -> sympy.Expr:
        exponent = self.visit(node.right)
        if not (exponent.is_Integer and 0 <= exponent <= MAX_EXPONENT):
            raise ExprError(
                f"exponent in {self.text!r} must be an integer constant from 0 to {MAX_EXPONENT}"
            )
        return self.bounded(self.visit(node.left) ** exponent)

    def bounded(self, result: sympy.Expr) -> sympy.Expr:
        if result.is_Number and result.is_finite and abs(result) >= MAX_LITERAL:
            raise ExprError(f"{self.text!r} is too large (limit 10**18)")
        return result

    def call(self, node: ast.Call) -> sympy.Expr:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.refuse("calls other than min max ceil floor are")
        if node.keywords:
            raise self.refuse("keyword arguments are")
        fn, arity = FUNCTIONS[node.func.id]
        args = [self.visit(a) for a in node.args]
        if (arity == 1 and len(args) != 1) or (arity == 2 and len(args) < 2):
            wanted = "one argument" if arity == 1 else "at least two arguments"
            raise ExprError(f"{node.func.id}() takes {wanted} in {self.text!r}")
        return fn(*args)
