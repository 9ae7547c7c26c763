"""The one key rule (rebayes.store.keys): what changes a key and what does not.

The code digest is computed over a copy of the package in a temporary folder, edited there:
a docstring of the command line or a report template leaves the keys of fits and summaries
as they were, an edit to the model or to a summary function changes them. Under the rule
before (a hand-bumped model version for fits, every ``.py`` file for summaries) the first
kind of edit changed the summaries' key and the second left the fits' key alone.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest

import rebayes
from rebayes.store import keys
from rebayes.store.keys import KINDS, code_digest, content_key, imported_modules

PACKAGE = Path(rebayes.__file__).resolve().parent


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the package's source (no bytecode), to edit.

    Digests are kept per process and folder, so a test compares the digest of this copy with
    that of the unedited package.
    """
    copy = tmp_path / "rebayes"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _first_docstring_line(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))).splitlines()[0]


def test_a_cli_docstring_or_a_template_leaves_fits_and_summaries_keyed_as_before(package):
    before = {kind: code_digest(KINDS[kind].modules) for kind in ("fit", "derived")}
    cli_fit = package / "cli" / "fit.py"
    _edit(cli_fit, _first_docstring_line(cli_fit), "Another help text.")
    template = next((package / "report" / "templates").iterdir())
    template.write_text(template.read_text(encoding="utf-8") + "\n<!-- edited -->\n")
    for kind, digest in before.items():
        assert code_digest(KINDS[kind].modules, package) == digest, kind


def test_an_edit_to_the_model_changes_the_fit_key(package):
    before = code_digest(KINDS["fit"].modules)
    _edit(package / "bayes" / "model.py", "import numpy as np", "import numpy as np  # edited")
    assert code_digest(KINDS["fit"].modules, package) != before


def test_an_edit_to_a_summary_function_changes_the_summary_key_not_the_fit_key(package):
    before = {kind: code_digest(KINDS[kind].modules) for kind in ("fit", "derived")}
    summary = package / "bayes" / "summary.py"
    _edit(summary, _first_docstring_line(summary), "Edited.")
    assert code_digest(KINDS["derived"].modules, package) != before["derived"]
    assert code_digest(KINDS["fit"].modules, package) == before["fit"]


def test_the_fit_key_follows_the_code_digest(monkeypatch):
    from rebayes.bayes.design import build_design
    from rebayes.bayes.fit import fit_key
    from rebayes.bayes.priors import get_prior
    from rebayes.bayes.settings import SamplerSettings
    from rebayes.bayes.spec import AnalysisSpec

    design = build_design(AnalysisSpec(name="bcg", data=str(PACKAGE.parents[1] / "tests" /
                                                             "data" / "bcg.csv")))
    prior = get_prior("weakly_informative")
    key = fit_key(design, prior, 1, SamplerSettings())
    assert fit_key(design, prior, 1, SamplerSettings()) == key
    monkeypatch.setattr(keys, "code_digest", lambda modules, root=None: "edited model")
    assert fit_key(design, prior, 1, SamplerSettings()) != key


def test_the_closures_hold_what_computes_each_kind_and_nothing_of_the_command_line():
    fit = imported_modules(KINDS["fit"].modules)
    assert {"rebayes.bayes.model", "rebayes.bayes.nuts", "rebayes.bayes.design"} <= set(fit)
    assert "rebayes.bayes.summary" not in fit
    # report.sections reads ppc_plot from rebayes.plots, whose __getattr__ loads it on first
    # use from this module: a lazy name is followed to the module that defines it.
    assert "rebayes.plots.diagnostic_plots" in imported_modules(KINDS["derived"].modules)
    imports = imported_modules(KINDS["import"].modules)
    assert {"rebayes.data.revman", "rebayes.data.revman_csv",
            "rebayes.data.cochrane_package"} <= set(imports)
    for kind in ("fit", "compiled", "derived", "bias", "import"):
        closure = imported_modules(KINDS[kind].modules)
        assert not [m for m in closure if m.startswith(("rebayes.cli", "rebayes.batch"))], kind


def test_content_key_is_the_sha256_of_kind_inputs_versions_and_code():
    kind = KINDS["import"]
    payload = {
        "kind": "import",
        "inputs": {"file": "abc"},
        "libraries": {name: metadata.version(name) for name in kind.libraries},
        "code": code_digest(kind.modules),
    }
    text = json.dumps(payload, sort_keys=True)
    assert content_key("import", {"file": "abc"}) == hashlib.sha256(text.encode()).hexdigest()[:32]


@pytest.mark.parametrize("subpackage", ["data", "store"])
def test_data_and_store_never_import_bayes(subpackage):
    for path in sorted((PACKAGE / subpackage).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.startswith("rebayes.bayes")], path


def test_library_versions_are_those_importlib_reads():
    names = tuple(sorted({name for kind in KINDS.values() for name in kind.libraries}))
    assert keys.library_versions(names) == {name: metadata.version(name) for name in names}
