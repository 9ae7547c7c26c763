"""The one key rule of everything kept on disk, and JSON as rebayes writes it.

A stored result (a fit, a compiled model, a fit's summaries, the report's bias section, an
imported review, a batch task's record) is found again by its key, :func:`content_key`: the
SHA-256 of the canonical JSON of

- its kind (:data:`KINDS`),
- the inputs that change it (given by the caller: a fit's rows, prior, seed and settings...),
- the versions of the libraries whose numerics enter it (:attr:`Kind.libraries`), and
- a digest of the source of the modules that compute it (:func:`code_digest`): the kind's
  entry modules (:attr:`Kind.modules`) and every ``rebayes`` module they import, directly or
  not, found by parsing their import statements.

So editing the model voids the fits and editing a summary function voids the summaries,
without anyone remembering to bump a number, while editing the command line's help text or a
report template voids neither. The digest reads only the package's files (it imports nothing)
and is kept for the process: a few milliseconds (docs/performance.md).

The same module is the one home of JSON: :func:`plain` turns numpy scalars into Python
numbers and NaN or infinities into ``null`` (standard JSON has no NaN), :func:`dumps` writes
the result (UTF-8 text, order kept: the order of a record is meaningful), :func:`stable_hash`
hashes a payload, and :func:`key_form` is the form values take inside a key.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "Kind",
    "code_digest",
    "content_key",
    "dumps",
    "imported_modules",
    "key_form",
    "library_versions",
    "plain",
    "stable_hash",
]


def plain(value: Any) -> Any:
    """Return ``value`` with numpy scalars as Python ones and NaN/infinities as None.

    Dicts, lists and tuples are converted recursively (tuples become lists).

    Examples
    --------
    >>> plain({"a": np.float64("nan"), "b": [np.int64(2), 0.5]})
    {'a': None, 'b': [2, 0.5]}
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def dumps(payload: Any, indent: int | None = 2) -> str:
    """Return standard JSON text of ``payload`` (after :func:`plain`), keys in given order."""
    return json.dumps(plain(payload), indent=indent, ensure_ascii=False, allow_nan=False)


def stable_hash(payload: Any, length: int = 32) -> str:
    """SHA-256 (hex, first ``length`` characters) of ``payload`` as sorted-key JSON.

    Values JSON cannot hold (paths, dates) enter by their ``str``.
    """
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def key_form(value: Any) -> Any:
    """Return the form a value takes in a key: what it holds, not what it is called.

    Arrays keep their dtype and shape; a dataclass (a dataset's schema, a prior) enters by
    its fields except ``title``, which is a name (the same rows under another name share a
    key); dicts, lists and tuples are converted recursively.

    Examples
    --------
    >>> key_form({"n": np.array([3, 4], dtype="int64")})
    {'n': {'dtype': '<i8', 'shape': [2], 'values': [3, 4]}}
    """
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.str, "shape": list(value.shape), "values": value.tolist()}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: key_form(getattr(value, f.name)) for f in fields(value)
                if f.name != "title"}
    if isinstance(value, dict):
        return {str(k): key_form(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [key_form(v) for v in value]
    return value


@dataclass(frozen=True)
class Kind:
    """What computes one kind of stored result.

    Attributes
    ----------
    modules : tuple of str
        The entry modules that compute it; the modules they import are found
        (:func:`imported_modules`).
    libraries : tuple of str
        Distributions whose numerics enter it (their versions are keyed).
    """

    modules: tuple[str, ...]
    libraries: tuple[str, ...] = ()


# Libraries whose code samples a fit or is compiled into its model.
_SAMPLING = ("nutpie", "pymc", "pytensor", "numba", "llvmlite", "numpy", "xarray")
# Libraries whose numerics enter what is computed from draws (figures: matplotlib).
_SUMMARISING = ("arviz-stats", "arviz-base", "xarray", "numpy", "scipy", "pandas", "matplotlib")

_FIT = ("rebayes.bayes.design", "rebayes.bayes.priors", "rebayes.bayes.model",
        "rebayes.bayes.compilation", "rebayes.bayes.nuts", "rebayes.bayes.trees",
        "rebayes.store.fits")
_DERIVED = ("rebayes.bayes.summary", "rebayes.checks.convergence", "rebayes.checks.ppc",
            "rebayes.checks.loo", "rebayes.sensitivity.psense", "rebayes.sensitivity.comparison",
            "rebayes.bayes.coefficients", "rebayes.plots", "rebayes.report.analysis",
            "rebayes.report.sections", "rebayes.report.build", "rebayes.store.derived")
_BIAS = ("rebayes.tools.bias", "rebayes.report.bias", "rebayes.store.derived")

#: Every kind of stored result and what computes it.
KINDS: dict[str, Kind] = {
    # A fit's draws and stored groups: the design, the prior, the model, its compilation, NUTS.
    "fit": Kind(_FIT, _SAMPLING),
    # A structure's compiled callbacks (the CPU target and Python are inputs).
    "compiled": Kind(("rebayes.bayes.model", "rebayes.bayes.compilation"), _SAMPLING),
    # What Fit.derived keeps beside a fit: the summary, convergence checks and prior
    # sensitivity, and what the report keeps there (predictive checks, LOO, coefficients,
    # its figures, the decision tools' views): the modules computing each are entries.
    "derived": Kind(_DERIVED, _SUMMARISING),
    # The report's bias section (its HTML, record and funnel plot).
    "bias": Kind(_BIAS, ("numpy", "scipy", "pandas", "matplotlib")),
    # A review file (.rm5, Cochrane data package, RevMan CSV) imported as dataset folders.
    "import": Kind(("rebayes.data.reviews",), ("pandas", "numpy")),
    # A batch task's record: its fits, what is derived from them and its bias analysis.
    "batch": Kind(("rebayes.batch", *_FIT, *_DERIVED, *_BIAS),
                  tuple(dict.fromkeys(_SAMPLING + _SUMMARISING))),
}


def content_key(kind: str, inputs: Any) -> str:
    """Return the key of a stored result: the one rule (module docstring).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    inputs : JSON-able
        Everything else that changes the result (after :func:`key_form` where it holds
        arrays or dataclasses); values JSON cannot hold enter by their ``str``.

    Returns
    -------
    str
        32 hex digits of the SHA-256 of the canonical JSON of kind, inputs, library versions
        and code digest.

    Examples
    --------
    >>> content_key("import", {"file": "0123abcd"}) == content_key("import", {"file": "0123abcd"})
    True
    """
    what = KINDS[kind]
    return stable_hash({
        "kind": kind,
        "inputs": inputs,
        "libraries": library_versions(what.libraries),
        "code": code_digest(what.modules),
    })


@functools.cache
def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Return the installed version of each distribution (read once per process).

    Read from the name of its ``.dist-info`` folder, as installers write it (``numpy-2.3.1``):
    :func:`importlib.metadata.version` parses the whole metadata file (pandas' holds its
    README), ~1 ms per library. A library installed otherwise is asked for the usual way.
    """
    found = _installed_versions()
    return {name: found.get(_normalised(name)) or metadata.version(name) for name in names}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _installed_versions() -> dict[str, str]:
    """Distribution name -> version, from the ``.dist-info`` folders on ``sys.path``."""
    out: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                name, _, version = folder.removesuffix(".dist-info").partition("-")
                out.setdefault(_normalised(name), version)  # the first on sys.path is imported
    return out


def _package_root() -> Path:
    return Path(__file__).resolve().parent.parent


def code_digest(modules: Iterable[str], root: Path | None = None) -> str:
    """Return the SHA-256 of the source of ``modules`` and every ``rebayes`` module they import.

    Parameters
    ----------
    modules : iterable of str
        Dotted names of modules of the package (``"rebayes.bayes.model"``).
    root : Path, optional
        The package's folder (default: this installation's); the digest is that of the
        source files under it.
    """
    return _code_digest(tuple(sorted(modules)), root or _package_root())


@functools.cache
def _code_digest(modules: tuple[str, ...], root: Path) -> str:
    files = _module_files(root)
    digest = hashlib.sha256()
    for name in imported_modules(modules, root):
        digest.update(f"{name}\0".encode())
        digest.update(_source(files[name]))
        digest.update(b"\0")
    return digest.hexdigest()


def imported_modules(modules: Iterable[str], root: Path | None = None) -> list[str]:
    """Return ``modules`` and every ``rebayes`` module they import, directly or not (sorted).

    Imports anywhere in a module count (those inside functions too). ``from a import b``
    follows the module ``a.b`` if there is one, else the package ``a`` (whose ``__init__``
    defines ``b``). Only the package's own modules are followed.
    """
    files = _module_files(root or _package_root())
    seen: set[str] = set()
    todo = [name for name in modules if name in files]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(m for m in _imports(name, root or _package_root()) if m not in seen)
    return sorted(seen)


@functools.cache
def _source(path: Path) -> bytes:
    return path.read_bytes()


@functools.cache
def _module_files(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``: dotted name -> source file."""
    out = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        package = os.path.relpath(folder, root.parent).replace(os.sep, ".")
        for name in names:
            if name.endswith(".py"):
                module = package if name == "__init__.py" else f"{package}.{name[:-3]}"
                out[module] = Path(folder, name)
    return out


def _import_statements(source: bytes, package: bytes) -> Iterator[bytes]:
    """Yield the text of every line that may import a module of ``package`` (one line each).

    Parsing these alone is much faster than parsing whole modules (and the bytes are not
    decoded); a docstring line that looks like one fails to parse or names no module of the
    package, and is ignored.
    """
    pos = source.find(b"import")
    while pos != -1:
        start, end = source.rfind(b"\n", 0, pos) + 1, source.find(b"\n", pos)
        end = len(source) if end == -1 else end
        line = source[start:end].strip()
        if line.startswith((b"from ", b"import ")) and (package in line
                                                        or line.startswith(b"from .")):
            if b"(" in line and b")" not in line:
                end = source.find(b")", pos) + 1 or len(source)
                line = b" ".join(part.strip() for part in source[start:end].splitlines())
            yield line
        pos = source.find(b"import", end)


@functools.cache
def _imports(name: str, root: Path) -> tuple[str, ...]:
    """Modules of the package (under ``root``) the module ``name`` imports."""
    files = _module_files(root)
    path = files[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    lines = list(_import_statements(_source(path), name.partition(".")[0].encode()))
    try:
        statements = ast.parse(b"\n".join(lines)).body
    except SyntaxError:  # one line was not an import after all: parse them one by one
        statements = []
        for line in lines:
            with contextlib.suppress(SyntaxError):
                statements.extend(ast.parse(line).body)
    out: list[str] = []
    for statement in statements:
        if isinstance(statement, ast.Import):
            out.extend(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                up = package.split(".")[: len(package.split(".")) - statement.level + 1]
                base = ".".join([*up, base] if base else up)
            lazy = _lazy_names(files[base]) if base in files else {}
            for alias in statement.names:
                module = f"{base}.{alias.name}"
                out.append(module if module in files else lazy.get(alias.name, base))
                if module not in files and alias.name in lazy:
                    out.append(base)  # its __init__ runs too
    return tuple(m for m in out if m in files)


@functools.cache
def _lazy_names(path: Path) -> dict[str, str]:
    """Return a package's names loaded on first use: its ``_LAZY`` table (name -> module).

    ``rebayes`` and ``rebayes.plots`` import some modules only when one of their names is
    first read (a module ``__getattr__``), so ``from rebayes.plots import ppc_plot`` imports
    the module this table names.
    """
    if path.name != "__init__.py" or b"_LAZY" not in _source(path):
        return {}
    out: dict[str, str] = {}
    for node in ast.parse(_source(path)).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets)):
            continue
        for key, value in zip(node.value.keys, node.value.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                out[str(key.value)] = str(value.value)
            elif key is None and isinstance(value, ast.Call) and len(value.args) == 2:
                names, module = value.args  # **dict.fromkeys((names...), module)
                if isinstance(names, ast.Tuple) and isinstance(module, ast.Constant):
                    out.update({str(n.value): str(module.value) for n in names.elts
                                if isinstance(n, ast.Constant)})
    return out
