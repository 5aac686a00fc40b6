"""Conditions (``when``) and ``${{ ... }}`` references of workflow steps.

An expression is a small, safe subset of Python read against a context of
these names::

    inputs                   the run's inputs          inputs.page, inputs["page"]
    steps.<id>.result        a dependency's result     steps.review.result.approved
    steps.<id>.skipped       True if it was skipped
    item, index              in the inputs of a step with ``for_each``: its item, and where it stands (from 0)

Allowed: literals (``true``/``false``/``null`` too), ``and``/``or``/``not``,
comparisons (``==``, ``!=``, ``<``, ``in``, ...), ``+ - * / %``, attribute or
``[...]`` access to keys and list items, and ``len(...)``. Nothing else - no
calls, no imports, no dunder attributes - so a workflow file cannot run code.
A key that does not exist is an error naming the keys that do. What an
expression builds is bounded: repeating text or a list (``*``) past
``MAX_BUILT`` characters or items, or formatting text (``%``) with a width or
precision past it, is an error before anything is built.

In inputs, a string that is exactly ``${{ expr }}`` becomes the expression's
value (any JSON type); ``${{ expr }}`` inside longer text is replaced by its
text (JSON for lists and mappings).
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pepper.errors import ExpressionError

NAMES = ("inputs", "steps", "item", "index")
_ITEM_NAMES = frozenset({"item", "index"})
_CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
#: The most characters or items an expression may build by repeating (``"ab" * n``) or formatting text.
MAX_BUILT = 1_000_000
_SIZED = (str, bytes, list, tuple)
_FORMAT_SIZES = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*)(?:\.(\d*))?[hlL]?[A-Za-z%]?")


def _repeat(left: Any, right: Any) -> Any:
    """``left * right``, refused before it is computed when it would repeat text or a list past ``MAX_BUILT``."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, _SIZED) and isinstance(count, int) and count > 1 and len(seq) * count > MAX_BUILT:
            unit = ("character" if isinstance(seq, str) else "item") + ("" if len(seq) == 1 else "s")
            raise ExpressionError(
                f"repeating {_kind(seq)} of {len(seq):,} {unit} {count:,} times would build {len(seq) * count:,}; "
                f"an expression builds at most {MAX_BUILT:,}"
            )
    return operator.mul(left, right)


def _format(left: Any, right: Any) -> Any:
    """``left % right``; text formatting with a width or precision past ``MAX_BUILT`` is refused."""
    if isinstance(left, (str, bytes)):
        text = left.decode("latin-1") if isinstance(left, bytes) else left
        for match in _FORMAT_SIZES.finditer(text):
            for size in match.groups():
                if size and int(size) > MAX_BUILT:
                    raise ExpressionError(
                        f"the format {match.group(0)!r} asks for {int(size):,} characters; an expression builds "
                        f"at most {MAX_BUILT:,}"
                    )
    return operator.mod(left, right)


_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _repeat,
    ast.Div: operator.truediv,
    ast.Mod: _format,
}


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression; ``steps`` lists the step ids it reads."""

    text: str
    tree: ast.Expression
    steps: frozenset[str]
    reads_inputs: bool
    reads_item: bool = False  # it reads ``item`` or ``index`` (a fanned-out step's inputs only)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value of the expression; ``context`` maps ``inputs`` and ``steps`` (and ``item``, ``index``)."""
        try:
            return _Evaluator(self.text, context).visit(self.tree.body)
        except ExpressionError as exc:
            if exc.expression is None:  # raised by an operator: say which expression
                raise ExpressionError(f"{self.text!r}: {exc}", expression=self.text) from None
            raise
        except MemoryError:
            raise ExpressionError(
                f"{self.text!r} ran out of memory: it builds a value too large to hold", expression=self.text
            ) from None
        except Exception as exc:  # noqa: BLE001 - comparing a str with an int, dividing by zero, ...
            said = str(exc) or type(exc).__name__
            raise ExpressionError(f"{self.text!r} failed: {said}", expression=self.text) from None


def parse(text: Any) -> Expression:
    """Check an expression (a bare one or ``${{ ... }}``) and return it, ready to evaluate."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"an expression must be a non-empty string, got {text!r}")
    body = text.strip()
    whole = _TEMPLATE.fullmatch(body)
    if whole and "${{" not in whole.group(1):  # one reference, not text between two
        body = whole.group(1).strip()
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{text!r} is not a valid expression: {exc.msg}", expression=text) from None
    steps: set[str] = set()
    reads_inputs = reads_item = False
    for node in ast.walk(tree):
        _check_node(node, text)
        if isinstance(node, ast.Name):
            reads_inputs = reads_inputs or node.id == "inputs"
            reads_item = reads_item or node.id in _ITEM_NAMES
        step = _step_read(node)
        if step is not None:
            steps.add(step)
    return Expression(text, tree, frozenset(steps), reads_inputs, reads_item)


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare,
    ast.BinOp, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant, ast.List, ast.Tuple, ast.Call,
    *_COMPARE, *_ARITHMETIC,
)  # fmt: skip


def _check_node(node: ast.AST, text: str) -> None:
    if not isinstance(node, _ALLOWED):
        raise ExpressionError(
            f"{text!r} uses {type(node).__name__.lower()}, which expressions do not allow "
            "(allowed: literals, and/or/not, comparisons, + - * / %, .key and [index], len())",
            expression=text,
        )
    if isinstance(node, ast.Name) and node.id not in NAMES and node.id not in _CONSTANTS and node.id != "len":
        raise ExpressionError(
            f"{text!r} reads {node.id!r}; expressions can read {', '.join(NAMES)} "
            "(e.g. inputs.page, steps.review.result; item and index in a step with for_each)",
            expression=text,
        )
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ExpressionError(f"{text!r} reads {node.attr!r}; names starting with '_' are not allowed", expression=text)
    if isinstance(node, ast.Call) and (
        not isinstance(node.func, ast.Name) or node.func.id != "len" or node.keywords or len(node.args) != 1
    ):
        raise ExpressionError(f"{text!r} calls a function; only len(x) is allowed", expression=text)


def _step_read(node: ast.AST) -> str | None:
    """``x`` for ``steps.x`` or ``steps["x"]``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "steps":
        return node.attr
    if (
        isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "steps"
        and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)
    ):  # fmt: skip
        return node.slice.value
    return None


class _Evaluator:
    def __init__(self, text: str, context: Mapping[str, Any]) -> None:
        self.text = text
        self.context = context

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"{self.text!r}: {message}", expression=self.text)

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            if node.id not in self.context:
                raise self.fail(f"{node.id!r} is not available here")
            return self.context[node.id]
        if isinstance(node, ast.BoolOp):
            value: Any = None
            for operand in node.values:
                value = self.visit(operand)
                if (isinstance(node.op, ast.And) and not value) or (isinstance(node.op, ast.Or) and value):
                    return value
            return value
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.visit(comparator)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BinOp):
            return _ARITHMETIC[type(node.op)](self.visit(node.left), self.visit(node.right))
        if isinstance(node, ast.Attribute):
            return self.item(self.visit(node.value), node.attr, node)
        if isinstance(node, ast.Subscript):
            return self.item(self.visit(node.value), self.visit(node.slice), node)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.visit(e) for e in node.elts]
        if isinstance(node, ast.Call):
            return len(self.visit(node.args[0]))
        raise self.fail(f"cannot evaluate {type(node).__name__}")  # excluded by parse

    def item(self, container: Any, key: Any, node: ast.AST) -> Any:
        where = ast.unparse(node.value) if isinstance(node, (ast.Attribute, ast.Subscript)) else "value"
        if isinstance(container, Mapping):
            if key in container:
                return container[key]
            keys = ", ".join(map(str, list(container)[:10])) or "none"
            raise self.fail(f"{where} has no key {key!r} (keys: {keys})")
        if isinstance(container, (list, tuple, str)) and isinstance(key, int) and not isinstance(key, bool):
            if -len(container) <= key < len(container):
                return container[key]
            raise self.fail(f"{where} has {len(container)} items; index {key} is out of range")
        raise self.fail(f"{where} is {_kind(container)}, which has no {key!r}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list"}.get(
        type(value), type(value).__name__
    )


# -- ${{ }} references in inputs ------------------------------------------------------------


def references(value: Any) -> list[Expression]:
    """Every ``${{ ... }}`` expression inside ``value`` (strings, lists and mappings, nested)."""
    found: list[Expression] = []
    for text in _strings(value):
        for match in _TEMPLATE.finditer(text):
            found.append(parse(match.group(1).strip()))
    return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        if "${{" in value:
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def has_references(value: Any) -> bool:
    return any(True for _ in _strings(value))


def resolve(value: Any, context: Mapping[str, Any], only: Iterable[str] = NAMES) -> Any:
    """``value`` with its ``${{ ... }}`` references replaced; references reading names outside ``only``
    are left as they are (to be resolved later)."""
    allowed = frozenset(only)
    if isinstance(value, str):
        return _resolve_text(value, context, allowed) if "${{" in value else value
    if isinstance(value, Mapping):
        return {key: resolve(item, context, allowed) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, context, allowed) for item in value]
    return value


def _ready(expression: Expression, allowed: frozenset[str]) -> bool:
    needs = ({"steps"} if expression.steps else set()) | ({"inputs"} if expression.reads_inputs else set())
    if expression.reads_item:
        needs.add("item")
    return needs <= allowed


def _resolve_text(text: str, context: Mapping[str, Any], allowed: frozenset[str]) -> Any:
    whole = _TEMPLATE.fullmatch(text.strip())
    if whole and "${{" not in whole.group(1):  # exactly one reference: its value, of any type
        expression = parse(whole.group(1).strip())
        return expression.evaluate(context) if _ready(expression, allowed) else text

    def substitute(match: re.Match[str]) -> str:
        expression = parse(match.group(1).strip())
        if not _ready(expression, allowed):
            return match.group(0)
        result = expression.evaluate(context)
        return result if isinstance(result, str) else json.dumps(result)

    return _TEMPLATE.sub(substitute, text)
