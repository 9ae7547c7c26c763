"""What is computed from a cached fit (summary, verdict, sensitivity), kept on disk beside it.

Summarising a fit (:func:`rebayes.bayes.summary.summarize`), checking it
(:func:`rebayes.checks.convergence.diagnose`: R-hat, bulk and tail ESS and MCSE of every
reported quantity) and power-scaling it (:func:`rebayes.sensitivity.psense.prior_sensitivity`)
takes ~0.5 s of xarray and arviz-stats work, longer than reading the fit. A report does that
for a hundred fits; with every fit cached it was most of the report's time. Each is a pure
function of the fit's draws and attributes and of the code, so each is stored once under
``<cache>/summaries/<key>.pkl`` (one file per fit: a dict of named results) and read back in
milliseconds by every later process (:meth:`rebayes.Fit.derived`).

The key (:func:`summary_key`) hashes the fit's key (its rows and labels, direction of
benefit, prior, seed and sampler settings), the names it is read under (analysis, title,
dataset, variant, prior name: a fit read under another name gets its own entry, since its
summary carries those names; not the data file's location, which no result shows), the
source of every
module of the package and the versions of the libraries the numbers come from: any change of
code recomputes. The file is written atomically with a checksum
(:func:`rebayes.bayes.cache.write_entry`); a damaged or unreadable one is recomputed and
replaced, with one note.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from rebayes.bayes.cache import note_unreadable, read_entry, summaries_dir, write_entry
from rebayes.json_io import plain, stable_hash

__all__ = ["load_derived", "store_derived", "summary_key"]

#: Bump when what is stored changes shape.
SUMMARY_FORMAT = "3"

# Libraries whose numerics enter the summaries.
_LIBRARIES = ("arviz-stats", "arviz-base", "xarray", "numpy", "scipy", "pandas")


@functools.cache
def _code_digest() -> str:
    """Hash of the package's source and of the versions of the libraries it computes with."""
    import rebayes

    digest = hashlib.sha256(SUMMARY_FORMAT.encode())
    root = Path(str(rebayes.__file__)).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    for name in _LIBRARIES:
        digest.update(f"{name}={metadata.version(name)};".encode())
    return digest.hexdigest()


def summary_key(fit_key: str, names: Mapping[str, Any]) -> str:
    """Hash of everything a fit's summary depends on (see the module docstring).

    ``names`` are the attributes a fit is stamped with under the names it is read as
    (:func:`rebayes.bayes.trees.provenance`); every other attribute is a function of the
    fit's key.
    """
    return stable_hash({"fit": fit_key, "names": plain(dict(names)), "code": _code_digest()})


def _path(fit_key: str, names: Mapping[str, Any]) -> Path:
    return summaries_dir() / f"{summary_key(fit_key, names)}.pkl"


_WHAT = "cached fit summary"


def load_derived(fit_key: str, names: Mapping[str, Any]) -> dict[str, Any]:
    """Return what is stored for a fit (name -> result); empty if nothing (readable) is.

    A damaged entry is noted once (:func:`rebayes.bayes.cache.read_entry`) and recomputed.
    """
    path = _path(fit_key, names)
    blob = read_entry(path, _WHAT)
    if blob is None:
        return {}
    try:
        stored: Any = pickle.loads(blob)
    except Exception as exc:  # noqa: BLE001 - whole but unusable (e.g. a class since renamed)
        note_unreadable(path, _WHAT, f"{type(exc).__name__}: {exc}".splitlines()[0])
        return {}
    return stored if isinstance(stored, dict) else {}


def store_derived(fit_key: str, names: Mapping[str, Any], derived: dict[str, Any]) -> None:
    """Write what is computed for a fit (atomically); a failed write only costs recomputing."""
    try:
        blob = pickle.dumps(derived, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return  # a result that cannot be pickled is computed again next time
    write_entry(_path(fit_key, names), blob)
