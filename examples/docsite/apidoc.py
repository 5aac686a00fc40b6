"""API reference pages for a Python package, read from its source with ``ast``.

Nothing here imports the package being documented: every fact comes from the
syntax tree, so a module that would fail to import (or that has side effects on
import) is still documented. The functions are pure apart from reading files;
the agents in ``docsite_agents`` decide where pages go.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

#: What the overview says when a module has no docstring (the review looks for it).
NO_DOCSTRING = "*No module docstring.*"


@dataclass
class Member:
    """A documented function, method or class: its display signature and docstring.

    A class's ``signature`` is how to call it (from its ``__init__``), or just its name.
    """

    name: str
    signature: str
    doc: str = ""
    attributes: list[str] = field(default_factory=list)
    methods: list[Member] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)


@dataclass
class ModuleDoc:
    """Everything a page says about one module."""

    name: str
    doc: str
    classes: list[Member]
    functions: list[Member]
    exports: list[str]
    imports: list[str]


def discover_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every module worth a page.

    ``__main__.py`` is left out, and so is an ``__init__.py`` holding nothing but
    (at most) a docstring: such a page would only repeat the package name.
    """
    root = package_dir.parent
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        parts = path.relative_to(root).with_suffix("").parts
        if path.name == "__init__.py":
            if _only_docstring(path):
                continue
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _only_docstring(path: Path) -> bool:
    try:
        body = ast.parse(path.read_text()).body
    except SyntaxError:
        return False  # let the documentation task report the error
    return len(body) == 0 or (len(body) == 1 and ast.get_docstring(ast.Module(body, [])) is not None)


def describe_module(source: str, name: str, *, is_package: bool, known: set[str]) -> ModuleDoc:
    """Parse ``source`` (module ``name``) into a ``ModuleDoc``; ``known`` are the modules that have pages."""
    tree = ast.parse(source, filename=f"{name}.py")
    classes = [_describe_class(node) for node in tree.body if isinstance(node, ast.ClassDef) and _public(node.name)]
    functions = [
        _describe_function(node, method=False)
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(node.name)
    ]
    return ModuleDoc(
        name=name,
        doc=ast.get_docstring(tree) or "",
        classes=classes,
        functions=functions,
        exports=_exports(tree),
        imports=_internal_imports(tree, name, is_package=is_package, known=known),
    )


def _public(name: str) -> bool:
    return not name.startswith("_")


def _describe_class(node: ast.ClassDef) -> Member:
    methods: list[Member] = []
    signature = node.name
    attributes: list[str] = []
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if item.name == "__init__":
                signature = f"{node.name}({format_arguments(item.args, drop_first=True)})"
            elif _public(item.name) and not _is_accessor(item):
                methods.append(_describe_function(item, method=True))
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and _public(item.target.id):
            attributes.append(f"{item.target.id}: {ast.unparse(item.annotation)}")
        elif isinstance(item, ast.Assign):
            attributes += [t.id for t in item.targets if isinstance(t, ast.Name) and _public(t.id)]
    return Member(
        name=node.name,
        signature=signature,
        doc=ast.get_docstring(node) or "",
        attributes=attributes,
        methods=methods,
        bases=[ast.unparse(base) for base in node.bases],
    )


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [ast.unparse(d) for d in node.decorator_list]


def _is_accessor(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Property setters and deleters: the getter already documents the attribute."""
    return any(d.endswith((".setter", ".deleter")) for d in _decorators(node))


def _describe_function(node: ast.FunctionDef | ast.AsyncFunctionDef, *, method: bool) -> Member:
    decorators = _decorators(node)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    if "property" in decorators or "functools.cached_property" in decorators or "cached_property" in decorators:
        kind = "property "
        signature = f"{node.name}: {ast.unparse(node.returns)}" if node.returns else node.name
    else:
        kind = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
        if "classmethod" in decorators:
            kind += "classmethod "
        elif "staticmethod" in decorators:
            kind += "staticmethod "
        drop_first = method and "staticmethod" not in decorators
        signature = f"{node.name}({format_arguments(node.args, drop_first=drop_first)}){returns}"
    return Member(name=node.name, signature=kind + signature, doc=ast.get_docstring(node) or "")


def format_arguments(args: ast.arguments, *, drop_first: bool = False) -> str:
    """The parameter list as written in the source, e.g. ``a: int, /, *, b: str = 'x', **kw``.

    ``drop_first`` leaves out ``self``/``cls`` of a method.
    """
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=True))
    posonly = len(args.posonlyargs)
    if drop_first and pairs:
        pairs.pop(0)
        posonly = max(0, posonly - 1)
    parts = [_parameter(arg, default) for arg, default in pairs]
    if posonly:
        parts.insert(posonly, "/")
    if args.vararg is not None:
        parts.append("*" + _parameter(args.vararg, None))
    elif args.kwonlyargs:
        parts.append("*")
    parts += [_parameter(arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg is not None:
        parts.append("**" + _parameter(args.kwarg, None))
    return ", ".join(parts)


def _parameter(arg: ast.arg, default: ast.expr | None) -> str:
    text = arg.arg
    if arg.annotation is not None:
        text += f": {ast.unparse(arg.annotation)}"
    if default is not None:
        text += " = " if arg.annotation is not None else "="
        text += ast.unparse(default)
    return text


def _exports(tree: ast.Module) -> list[str]:
    """The names in a literal ``__all__``, if the module has one."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _internal_imports(tree: ast.Module, name: str, *, is_package: bool, known: set[str]) -> list[str]:
    """Documented modules of the same top-level package that ``tree`` imports from (sorted)."""
    top = name.split(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, name, is_package=is_package)
            for alias in node.names:
                # ``from pepper.model import codec`` names a module; ``from pepper.core import X`` does not.
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    found.discard(name)
    return sorted(m for m in found if m in known and (m == top or m.startswith(top + ".")))


def _absolute(module: str | None, level: int, name: str, *, is_package: bool) -> str:
    if level == 0:
        return module or ""
    parts = name.split(".")
    if not is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, module] if module else parts)


def render_page(doc: ModuleDoc) -> str:
    """The Markdown page of one module."""
    lines = [f"# {doc.name}", "", "## Overview", "", markdown_text(doc.doc) if doc.doc else NO_DOCSTRING, ""]
    if doc.exports:
        lines += ["## Exports", "", ", ".join(f"`{name}`" for name in doc.exports), ""]
    lines += ["## Classes", ""]
    for cls in doc.classes:
        bases = f"({', '.join(cls.bases)})" if cls.bases else ""
        lines += [f"### {cls.name}", "", f"`class {cls.name}{bases}`", ""]
        if cls.signature != cls.name:
            lines += [f"Constructor: `{cls.signature}`", ""]
        if cls.doc:
            lines += [markdown_text(cls.doc), ""]
        if cls.attributes:
            lines += ["Attributes: " + ", ".join(f"`{a}`" for a in cls.attributes), ""]
        if cls.methods:
            lines += ["Members:", ""] + [_item(m) for m in cls.methods] + [""]
    if not doc.classes:
        lines += ["*No public classes.*", ""]
    lines += ["## Functions", ""]
    lines += [_item(f) for f in doc.functions] or ["*No public functions.*"]
    lines.append("")
    if doc.imports:
        lines += ["## See also", ""] + [f"- [{m}]({page_name(m)})" for m in doc.imports] + [""]
    return "\n".join(lines)


def _item(member: Member) -> str:
    summary = first_line(member.doc)
    return f"- `{member.signature}`" + (f" — {markdown_text(summary)}" if summary else "")


def page_name(module: str) -> str:
    """The file name of a module's page, also its relative link."""
    return f"{module}.md"


def first_line(doc: str) -> str:
    """The summary line of a docstring."""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


_CODE_SPAN = re.compile(r"(`+[^`]*`+)")


def markdown_text(doc: str) -> str:
    """A docstring made safe for Markdown.

    reST's ``Example::`` becomes ``Example:`` (the indented block after it is
    already a Markdown code block), and ``<`` outside code is escaped so that
    placeholders such as ``<home>`` are not swallowed as HTML tags.
    """
    out = []
    for line in doc.splitlines():
        if line.startswith("    "):  # code block: verbatim
            out.append(line)
            continue
        if line.endswith("::"):
            line = line[:-1]
        pieces = _CODE_SPAN.split(line)
        out.append("".join(p if p.startswith("`") else p.replace("<", "&lt;") for p in pieces))
    return "\n".join(out)
