"""What is computed from a cached fit (summary, verdict, sensitivity), kept on disk beside it.

Summarising a fit (:func:`rebayes.bayes.summary.summarize`), checking it
(:func:`rebayes.checks.convergence.diagnose`: R-hat, bulk and tail ESS and MCSE of every
reported quantity) and power-scaling it (:func:`rebayes.sensitivity.psense.prior_sensitivity`)
takes ~0.5 s of xarray and arviz-stats work, longer than reading the fit. A report does that
for a hundred fits; with every fit cached it was most of the report's time. Each is a pure
function of the fit's draws and attributes and of the code, so each is stored once under
``<cache>/summaries/<key>.pkl`` (one file per fit: a dict of named results) and read back in
milliseconds by every later process (:meth:`rebayes.Fit.derived`). The report's bias section
is kept the same way (:mod:`rebayes.report.bias`, kind ``"bias"``).

The key (:func:`derived_key`) follows the one key rule
(:func:`rebayes.store.keys.content_key`, kind ``"derived"``): the fit's key (its rows and
labels, direction of benefit, prior, seed and sampler settings), the names it is read under
(analysis, title, dataset, variant, prior name: a fit read under another name gets its own
entry, since its summary carries those names; not the data file's location, which no result
shows), the versions of the libraries the numbers come from and the source of the modules
that compute them (summary, convergence checks, prior sensitivity and what they import): a
change to that code recomputes, a change elsewhere (the command line, a report template)
does not. The file is written atomically with a checksum
(:func:`rebayes.store.paths.write_entry`); a damaged or unreadable one is recomputed and
replaced, with one note.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rebayes.store.keys import content_key, plain
from rebayes.store.paths import note_unreadable, read_entry, summaries_dir, write_entry

__all__ = ["derived_key", "load_derived", "store_derived"]


def derived_key(owner: str, names: Mapping[str, Any], kind: str = "derived") -> str:
    """Key of what is kept for ``owner`` (a fit's key) under ``names`` (module docstring).

    ``names`` are the attributes a fit is stamped with under the names it is read as
    (:func:`rebayes.bayes.trees.provenance`); every other attribute is a function of the
    fit's key. ``kind`` is the :data:`~rebayes.store.keys.KINDS` entry whose code computes
    what is kept (``"bias"``: the report's bias section, ``owner`` a key of its inputs).
    """
    return content_key(kind, {"owner": owner, "names": plain(dict(names))})


def _path(owner: str, names: Mapping[str, Any], kind: str) -> Path:
    return summaries_dir() / f"{derived_key(owner, names, kind)}.pkl"


_WHAT = "cached fit summary"


def load_derived(owner: str, names: Mapping[str, Any], kind: str = "derived") -> dict[str, Any]:
    """Return what is stored for a fit (name -> result); empty if nothing (readable) is.

    A damaged entry is noted once (:func:`rebayes.store.paths.read_entry`) and recomputed.
    """
    path = _path(owner, names, kind)
    blob = read_entry(path, _WHAT)
    if blob is None:
        return {}
    try:
        stored: Any = pickle.loads(blob)
    except Exception as exc:  # noqa: BLE001 - whole but unusable (e.g. a class since renamed)
        note_unreadable(path, _WHAT, f"{type(exc).__name__}: {exc}".splitlines()[0])
        return {}
    return stored if isinstance(stored, dict) else {}


def store_derived(
    owner: str, names: Mapping[str, Any], derived: dict[str, Any], kind: str = "derived"
) -> None:
    """Write what is computed for a fit (atomically); a failed write only costs recomputing."""
    try:
        blob = pickle.dumps(derived, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return  # a result that cannot be pickled is computed again next time
    write_entry(_path(owner, names, kind), blob)
