"""The outline of a Python module (classes, methods, functions, imports) for prompts."""

from __future__ import annotations

import ast

from pydantic import BaseModel, Field

from ai_agents.errors import WorkspaceError


class FunctionInfo(BaseModel):
    name: str
    signature: str = Field(description="e.g. 'def add(a: int, b: int = 1) -> int'")
    lineno: int
    end_lineno: int
    docstring: str | None = Field(None, description="first line only")
    decorators: list[str] = Field(default_factory=list)
    is_async: bool = False


class ClassInfo(BaseModel):
    name: str
    bases: list[str] = Field(default_factory=list)
    lineno: int
    end_lineno: int
    docstring: str | None = None
    methods: list[FunctionInfo] = Field(default_factory=list)


class ImportInfo(BaseModel):
    module: str = Field(description="'os' for 'import os', 'pkg.mod' for 'from pkg.mod import x'")
    names: list[str] = Field(default_factory=list, description="imported names; empty for 'import x'")
    lineno: int
    level: int = Field(0, description="relative import depth (1 for 'from . import x')")


class ModuleStructure(BaseModel):
    path: str
    docstring: str | None = None
    imports: list[ImportInfo] = Field(default_factory=list)
    classes: list[ClassInfo] = Field(default_factory=list)
    functions: list[FunctionInfo] = Field(default_factory=list)
    line_count: int = 0

    def summary(self) -> str:
        """A compact text outline, a few lines per definition, to put in a prompt."""
        lines = [f"{self.path} ({self.line_count} lines)" + (f" — {self.docstring}" if self.docstring else "")]
        if self.imports:
            shown = []
            for imp in self.imports:
                mod = "." * imp.level + imp.module
                shown.append(f"{mod}.{{{', '.join(imp.names)}}}" if imp.names else mod)
            lines.append("imports: " + ", ".join(shown))
        for cls in self.classes:
            bases = f"({', '.join(cls.bases)})" if cls.bases else ""
            doc = f" — {cls.docstring}" if cls.docstring else ""
            lines.append(f"class {cls.name}{bases}  [L{cls.lineno}-{cls.end_lineno}]{doc}")
            for m in cls.methods:
                mdoc = f" — {m.docstring}" if m.docstring else ""
                lines.append(f"    {m.signature}  [L{m.lineno}]{mdoc}")
        for fn in self.functions:
            doc = f" — {fn.docstring}" if fn.docstring else ""
            lines.append(f"{fn.signature}  [L{fn.lineno}-{fn.end_lineno}]{doc}")
        return "\n".join(lines)


def _first_line(node: ast.AST) -> str | None:
    doc = ast.get_docstring(node, clean=True) if isinstance(
        node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) else None
    if not doc:
        return None
    return doc.strip().splitlines()[0].strip() or None


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> FunctionInfo:
    is_async = isinstance(node, ast.AsyncFunctionDef)
    ret = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    sig = f"{'async ' if is_async else ''}def {node.name}({ast.unparse(node.args)}){ret}"
    return FunctionInfo(
        name=node.name,
        signature=sig,
        lineno=node.lineno,
        end_lineno=node.end_lineno or node.lineno,
        docstring=_first_line(node),
        decorators=[ast.unparse(d) for d in node.decorator_list],
        is_async=is_async,
    )


def check_python_syntax(source: str, filename: str) -> None:
    """Raise WorkspaceError naming the line and message if ``source`` is not valid Python."""
    try:
        # compile() also catches what ast.parse lets through (e.g. 'return' outside a function).
        compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise WorkspaceError(f"{filename}: syntax error at line {e.lineno}: {e.msg}") from e
    except ValueError as e:  # e.g. "source code string cannot contain null bytes"
        raise WorkspaceError(f"{filename}: not valid Python source: {e}") from e
    except (RecursionError, MemoryError, OverflowError) as e:
        raise WorkspaceError(_too_complex(filename, e)) from e


def _too_complex(path: str, error: BaseException) -> str:
    """The refusal of one file that the parser cannot hold (nested too deeply, too large)."""
    what = {"RecursionError": "nested too deeply", "MemoryError": "too large to parse",
            "OverflowError": "too large to parse"}.get(type(error).__name__, "not parseable")
    return f"{path}: refused, {what} for the Python parser ({type(error).__name__})"


def parse_source(source: str, path: str) -> ModuleStructure:
    """Outline ``source``; a syntax error becomes WorkspaceError with the line number, and a file
    the parser cannot hold (RecursionError, MemoryError, OverflowError) a WorkspaceError saying so."""
    try:
        return _parse_source(source, path)
    except (RecursionError, MemoryError, OverflowError) as e:
        raise WorkspaceError(_too_complex(path, e)) from e


def _parse_source(source: str, path: str) -> ModuleStructure:
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise WorkspaceError(f"{path}: syntax error at line {e.lineno}: {e.msg}") from e
    except ValueError as e:
        raise WorkspaceError(f"{path}: not valid Python source: {e}") from e
    structure = ModuleStructure(path=path, docstring=_first_line(tree), line_count=len(source.splitlines()))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            structure.imports.extend(ImportInfo(module=a.name, lineno=node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            structure.imports.append(ImportInfo(
                module=node.module or "", names=[a.name for a in node.names], lineno=node.lineno, level=node.level))
    structure.imports.sort(key=lambda i: i.lineno)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            structure.functions.append(_function(node))
        elif isinstance(node, ast.ClassDef):
            structure.classes.append(ClassInfo(
                name=node.name,
                bases=[ast.unparse(b) for b in node.bases],
                lineno=node.lineno,
                end_lineno=node.end_lineno or node.lineno,
                docstring=_first_line(node),
                methods=[_function(n) for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)],
            ))
    return structure
