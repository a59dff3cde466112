"""Static import check of a Workers bundle: every module the server can import must be in the
bundle, in the standard library, or provided by the Workers runtime.

No Python Worker runs offline (workerd downloads Pyodide), so this is checked by reading the
code with `ast`, never by importing it. Rules:

- Every `.py` file of the server is scanned; vendored modules are scanned when reachable from
  it, following absolute and relative imports. (Scanning every vendored file would flag
  optional back-ends that are never imported, such as anyio's trio back-end.)
- Absolute imports at module level and inside functions and classes count; only their
  top-level name is checked. Relative imports are followed, never flagged.
- Not counted: imports in a `try` whose handlers catch ImportError, ModuleNotFoundError,
  Exception or everything (optional imports; followed when present), imports under
  `if TYPE_CHECKING:`, and branches a test on `sys.version_info`, `sys.platform` or
  `os.name` rules out for the runtime (Python X.Y on Pyodide: platform "emscripten",
  os.name "posix").
- Dynamic imports (`importlib.import_module`, `__import__`) cannot be seen.
"""

from __future__ import annotations

import ast
import operator
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLATFORM = "emscripten"
OS_NAME = "posix"
# Standard-library modules removed in a version: gone for that runtime and later ones.
REMOVED_FROM_STDLIB: dict[tuple[int, int], frozenset[str]] = {
    (3, 12): frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd"}),
    (3, 13): frozenset(
        {
            "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap",
            "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau",
            "telnetlib", "uu", "xdrlib",
        }
    ),
}  # fmt: skip
_OPTIONAL_HANDLERS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def stdlib_modules(python: tuple[int, int]) -> frozenset[str]:
    """Top-level standard-library module names of Python `python` (from this interpreter's
    list, adjusted for modules removed in later versions)."""
    removed = frozenset().union(*REMOVED_FROM_STDLIB.values())
    gone = frozenset().union(*(names for v, names in REMOVED_FROM_STDLIB.items() if v <= python))
    return (frozenset(sys.stdlib_module_names) | removed) - gone


@dataclass(frozen=True)
class ImportSite:
    """An import statement: the absolute module it names, where, and whether it is optional."""

    module: str
    file: str
    line: int
    optional: bool = False


@dataclass(frozen=True)
class ModuleFile:
    """A module in the bundle: its file on disk, its path in the bundle, package or not."""

    path: Path
    bundle_path: str
    is_package: bool


@dataclass
class ImportReport:
    """What the check found: imports of modules nowhere to be found, and runtime modules used."""

    missing: list[ImportSite] = field(default_factory=list)
    runtime_used: set[str] = field(default_factory=set)
    scanned: int = 0


def module_index(files: Mapping[str, Path], bundle_prefix: str) -> dict[str, ModuleFile]:
    """Dotted module name -> file, for the `.py` files among `files` (relative POSIX path ->
    file on disk; `a/b.py` -> `a.b`, `a/__init__.py` -> `a`)."""
    index: dict[str, ModuleFile] = {}
    for relative, path in files.items():
        *directories, filename = relative.split("/")
        stem = filename.removesuffix(".py")
        if stem == filename or not all(part.isidentifier() for part in directories):
            continue
        is_package = stem == "__init__"
        parts = directories if is_package else [*directories, stem]
        if parts and all(part.isidentifier() for part in parts):
            index[".".join(parts)] = ModuleFile(path, f"{bundle_prefix}/{relative}", is_package)
    return index


def check_imports(
    roots: Iterable[str],
    index: Mapping[str, ModuleFile],
    *,
    available: frozenset[str],
    runtime: frozenset[str],
    python: tuple[int, int],
    lenient: Callable[[str], bool] = lambda _name: False,
) -> ImportReport:
    """Scan the modules `roots` and every bundled module reachable from them (module doc).

    `index` holds every module in the bundle; `available` the top-level names the bundle
    provides (including namespace packages); `runtime` the top-level names the Workers
    runtime provides. An import of any other non-stdlib top-level name is reported missing
    unless optional. For modules where `lenient(name)` holds (third-party code), imports
    inside functions are optional: lazy imports of optional extras.
    """
    stdlib = stdlib_modules(python)
    report = ImportReport()
    queue: list[tuple[str, bool]] = [(root, False) for root in roots]
    scanned: dict[str, bool] = {}  # module -> scanned as optional
    while queue:
        name, optional = queue.pop()
        previous = scanned.get(name)
        if name not in index or (previous is not None and (optional or not previous)):
            continue  # unknown, or already scanned at least as strictly
        scanned[name] = optional
        report.scanned += 1
        sites, follow = _scan(name, index[name], python, lenient(name))
        queue.extend((module, optional or guarded) for module, guarded in follow)
        for site in sites:
            top = site.module.split(".")[0]
            if top in stdlib or top == "__future__":
                continue
            if top in runtime:
                report.runtime_used.add(top)
            elif top in available:
                queue.extend((m, optional or site.optional) for m in _prefixes(site.module))
            elif not (optional or site.optional):
                report.missing.append(site)
    report.missing.sort(key=lambda site: (site.file, site.line, site.module))
    return report


def _prefixes(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def _scan(
    name: str, module: ModuleFile, python: tuple[int, int], lenient: bool
) -> tuple[list[ImportSite], list[tuple[str, bool]]]:
    """Absolute import sites of one module, and the modules to follow from it (each with
    whether it is reached optionally)."""
    try:
        tree = ast.parse(module.path.read_bytes(), filename=module.bundle_path)
    except (SyntaxError, ValueError):
        return [], []  # not Python this runtime can import either; vendored templates etc.
    package = name if module.is_package else name.rpartition(".")[0]
    constants = _constants(tree, python)
    sites: list[ImportSite] = []
    follow: list[tuple[str, bool]] = []

    def visit(nodes: Iterable[ast.AST], optional: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    sites.append(ImportSite(alias.name, module.bundle_path, node.lineno, optional))
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package)
                if base is None:
                    continue
                children = [f"{base}.{a.name}" for a in node.names if a.name != "*"]
                if node.level == 0:
                    sites.append(ImportSite(base, module.bundle_path, node.lineno, optional))
                else:
                    children = [*_prefixes(base), *children]
                follow.extend((child, optional) for child in children)
            elif isinstance(node, ast.If):
                taken = _evaluate(node.test, python, constants)
                if taken is not False:
                    visit(node.body, optional)
                if taken is not True:
                    visit(node.orelse, optional)
            elif isinstance(node, ast.Try | ast.TryStar):
                # A handler for ImportError runs only when an import failed: its imports
                # are fallbacks, as optional as the ones it guards.
                guarded = optional or any(_catches_import_error(h) for h in node.handlers)
                visit(node.body, guarded)
                visit(node.orelse, guarded)
                for handler in node.handlers:
                    visit(handler.body, guarded)
                visit(node.finalbody, optional)
            elif isinstance(node, ast.With | ast.AsyncWith):
                suppressed = any(_suppresses_import_error(item.context_expr) for item in node.items)
                visit(node.body, optional or suppressed)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(node.body, optional or lenient)
            elif isinstance(node, ast.stmt | ast.excepthandler | ast.match_case):
                visit(ast.iter_child_nodes(node), optional)

    visit(tree.body, False)
    return sites, follow


def _constants(tree: ast.Module, python: tuple[int, int]) -> dict[str, bool]:
    """Module-level names bound to a test known statically (`PY_312 = sys.version_info >=
    (3, 12)`), in order, so later `if` tests can use them."""
    constants: dict[str, bool] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            known = _evaluate(value, python, constants)
            if known is None:
                constants.pop(target.id, None)
            else:
                constants[target.id] = known
    return constants


def _absolute(node: ast.ImportFrom, package: str) -> str | None:
    """The absolute module an `ImportFrom` names, or None when it climbs above the top."""
    if node.level == 0:
        return node.module
    parts = package.split(".") if package else []
    if node.level - 1 > len(parts) or (node.level - 1 == len(parts) and not node.module):
        return None
    base = parts[: len(parts) - (node.level - 1)]
    if node.module:
        base.append(node.module)
    return ".".join(base) or None


def _suppresses_import_error(context: ast.expr) -> bool:
    """`with suppress(ImportError):` / `contextlib.suppress(...)`."""
    return (
        isinstance(context, ast.Call)
        and _name(context.func) == "suppress"
        and any(_name(arg) in _OPTIONAL_HANDLERS for arg in context.args)
    )


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(_name(t) in _OPTIONAL_HANDLERS for t in types)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _evaluate(
    test: ast.expr, python: tuple[int, int], constants: Mapping[str, bool]
) -> bool | None:
    """The value of an `if` test on the runtime, when it can be known statically."""
    if _name(test) == "TYPE_CHECKING":
        return False
    if isinstance(test, ast.Name) and test.id in constants:
        return constants[test.id]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _evaluate(test.operand, python, constants)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        values = [_evaluate(v, python, constants) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in values else (None if None in values else True)
        return True if True in values else (None if None in values else False)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        return _compare(test.left, test.ops[0], test.comparators[0], python)
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Attribute)
        and test.func.attr == "startswith"
        and _dotted(test.func.value) == "sys.platform"
        and len(test.args) == 1
        and isinstance(test.args[0], ast.Constant)
        and isinstance(test.args[0].value, str | tuple)
    ):
        return PLATFORM.startswith(test.args[0].value)
    return None


def _compare(
    left: ast.expr, op: ast.cmpop, right: ast.expr, python: tuple[int, int]
) -> bool | None:
    compare = _COMPARE.get(type(op))
    if compare is None:
        return None
    subject = _dotted(left)
    if subject in ("sys.platform", "os.name") and isinstance(right, ast.Constant):
        return bool(compare(PLATFORM if subject == "sys.platform" else OS_NAME, right.value))
    wanted = _int_tuple(right)
    if wanted is None or not wanted:
        return None
    if isinstance(left, ast.Subscript) and _dotted(left.value) == "sys.version_info":
        part = left.slice  # sys.version_info[:n] is exactly the first n numbers
        if isinstance(part, ast.Slice) and part.lower is None and part.step is None:
            upper = part.upper.value if isinstance(part.upper, ast.Constant) else None
            if upper in (1, 2) and isinstance(upper, int):
                return bool(compare(python[:upper], wanted))
        return None
    if subject == "sys.version_info":
        if wanted[:2] != python[: len(wanted[:2])]:
            return bool(compare(python[: len(wanted)], wanted))
        if len(wanted) > 2:
            return None  # depends on the micro version
        # Equal so far: the real version_info is longer, so it compares greater.
        return bool(compare((*python[: len(wanted)], 0), wanted))
    return None


def _int_tuple(node: ast.expr) -> tuple[int, ...] | None:
    if not isinstance(node, ast.Tuple):
        return None
    values: list[int] = []
    for element in node.elts:
        if not isinstance(element, ast.Constant) or type(element.value) is not int:
            return None
        values.append(element.value)
    return tuple(values)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = _dotted(node.value)
        return f"{parent}.{node.attr}" if parent else None
    return None
