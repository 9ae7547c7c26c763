"""Which Bayesian analyses a dataset gets: the defaults, its declarations, its trusted scripts.

A dataset's analyses are, in this order (a later one replaces an earlier one of the same name):

1. the defaults, built from what ``dataset.toml`` declares (left out with
   ``default_analyses = false``):

   - ``overall``: binomial model, one common effect with trial random effects;
   - one analysis per declared covariate with ``analyse = true``: a categorical covariate
     gives a meta-regression with its subgroups reported (subgroup RRs and their ratios), a
     continuous one a meta-regression whose slope is reported per unit;
   - ``normal_approximation``: the normal-normal model on each trial's log RR (bayesmeta's);

2. the ``[[analyses]]`` declared in ``dataset.toml`` (an :class:`AnalysisSpec`'s fields as
   data: no code runs);
3. the scripts in the folder's ``models/`` that may run (:mod:`rebayes.data.trust`: shipped,
   ``allow_scripts=True``, or trusted by ``rebayes trust DIR``). Scripts that may not run are
   never imported; :class:`UntrustedScriptsWarning` names them.

They are ordered by the dataset's ``analysis_order``, then as listed (an unordered
``normal_approximation`` last). ``rebayes fit --data X NAME`` and ``rebayes compare --data X
NAME`` accept the name of any of these analyses as well as a path to a script.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

from rebayes.bayes.spec import AnalysisSpec, SpecError, load_script
from rebayes.data.trials import Dataset, load_dataset
from rebayes.data.trust import ScriptTrust, script_trust, untrusted_error, untrusted_note
from rebayes.errors import RebayesWarning

__all__ = [
    "UntrustedScriptsWarning",
    "analysis_specs",
    "declared_specs",
    "default_specs",
    "resolve_spec",
]


class UntrustedScriptsWarning(RebayesWarning):
    """A dataset folder's model scripts were not run: they are not trusted."""


def default_specs(dataset: Dataset) -> list[AnalysisSpec]:
    """Return the default analyses of a dataset (see the module docstring).

    Every declared covariate has one, whenever it was declared (no file lists them).

    Parameters
    ----------
    dataset : Dataset

    Returns
    -------
    list of AnalysisSpec
        ``overall`` first, the covariate analyses next, ``normal_approximation`` last.
    """
    schema = dataset.schema
    data = dataset.reference
    what = f"{schema.treatment} vs {schema.control}"
    specs = [
        AnalysisSpec(
            name="overall",
            title=f"Overall: {what} (binomial model, trial random effects)",
            data=data,
        )
    ]
    for cov in schema.covariates.values():
        if not cov.analyse:
            continue
        split = schema.strata is not None and cov.column == schema.strata
        if cov.kind == "continuous":
            specs.append(
                AnalysisSpec(
                    name=cov.name,
                    title=f"Meta-regression on {cov.title}"
                    + (f" (slope per {cov.unit})" if cov.unit else " (slope per unit)"),
                    data=data,
                    covariates=(cov.name,),
                    effect="contrast",
                    split_by_stratum=split,
                )
            )
        else:
            specs.append(
                AnalysisSpec(
                    name=cov.name,
                    title=f"Subgroups by {cov.title} (meta-regression)",
                    data=data,
                    covariates=(cov.name,),
                    effect="contrast",
                    subgroup=(cov.name,),
                    split_by_stratum=split,
                )
            )
    specs.append(
        AnalysisSpec(
            name="normal_approximation",
            title="Normal approximation on the log RR (bayesmeta's model)",
            data=data,
            likelihood="normal",
        )
    )
    return specs


def declared_specs(dataset: Dataset) -> list[AnalysisSpec]:
    """Return the analyses declared in ``dataset.toml``'s ``[[analyses]]``, in file order.

    Parameters
    ----------
    dataset : Dataset

    Returns
    -------
    list of AnalysisSpec
        Each bound to the dataset (``data`` set).

    Raises
    ------
    SpecError
        An entry that is not a valid spec (one line naming the file and the entry).

    Examples
    --------
    A ``dataset.toml`` entry such as::

        [[analyses]]
        name = "allocation"
        title = "Does the effect depend on the allocation? (meta-regression)"
        covariates = ["alloc"]
        effect = "contrast"
        subgroup = ["alloc"]

    gives the spec a script's ``rb.AnalysisSpec(name="allocation", ...)`` would.
    """
    data = str(dataset.directory or dataset.trials_path)
    specs = []
    for i, entry in enumerate(dataset.declared_analyses, start=1):
        try:
            specs.append(AnalysisSpec(**entry, data=data))
        except SpecError as exc:
            raise SpecError(f"{dataset.toml_label}: analyses[{i}]: {exc}") from None
        except TypeError as exc:  # a value of the wrong type where a spec expects another
            raise SpecError(f"{dataset.toml_label}: analyses[{i}]: {exc}") from None
    return specs


def _ordered(specs: list[AnalysisSpec], order: tuple[str, ...]) -> list[AnalysisSpec]:
    # Without a declared place: the overall answer first, the sensitivity analysis last.
    rank = {name: i for i, name in enumerate(order or ("overall",))}

    def key(item: tuple[int, AnalysisSpec]) -> tuple[int, int, int]:
        i, spec = item
        last = spec.name == "normal_approximation" and spec.name not in rank
        return (rank.get(spec.name, len(rank)), int(last), i)

    return [spec for _, spec in sorted(enumerate(specs), key=key)]


def _analyses(ds: Dataset, allow_scripts: bool) -> tuple[list[AnalysisSpec], ScriptTrust | None]:
    """Return the dataset's analyses (see the module docstring) and its scripts' trust."""
    data = ds.reference
    found: dict[str, AnalysisSpec] = {}
    for spec in [*(default_specs(ds) if ds.default_analyses else []), *declared_specs(ds)]:
        found[spec.name] = spec  # a declaration replaces a default in its place
    trust = None
    if ds.directory is not None and ds.models_dir is not None:
        trust = script_trust(ds.directory, allow_scripts)
        for spec in map(load_script, trust.trusted):
            found[spec.name] = replace(spec, data=data) if spec.data is None else spec
    return _ordered(list(found.values()), ds.schema.analysis_order), trust


def _warn_untrusted(trust: ScriptTrust | None) -> None:
    if trust is not None and trust.untrusted:
        warnings.warn(untrusted_note(trust), UntrustedScriptsWarning, stacklevel=3)


def analysis_specs(
    dataset: Dataset | str | Path, allow_scripts: bool = False
) -> list[AnalysisSpec]:
    """Return every analysis the report runs on a dataset (see the module docstring).

    Parameters
    ----------
    dataset : Dataset, str or Path
        A dataset or anything :func:`rebayes.data.trials.load_dataset` accepts.
    allow_scripts : bool
        Run every model script of the folder, trusted or not (``--allow-scripts``).

    Returns
    -------
    list of AnalysisSpec
        Each bound to the dataset (``data`` set).

    Warns
    -----
    UntrustedScriptsWarning
        Naming the folder's scripts that were not run, and how to let them run.
    """
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    specs, trust = _analyses(ds, allow_scripts)
    _warn_untrusted(trust)
    return specs


def resolve_spec(
    script_or_name: str | None,
    data: str | Path | None,
    higher_is_better: bool | None = None,
    allow_scripts: bool = False,
) -> AnalysisSpec:
    """Return the analysis a command names: a script path, or one of the dataset's analyses.

    Parameters
    ----------
    script_or_name : str, optional
        A path to a model script (it runs: the user named it), or the name of one of the
        dataset's analyses (:func:`analysis_specs`). None: ``overall``.
    data : str or Path, optional
        The dataset (``--data``); overrides the script's own ``data``.
    higher_is_better : bool, optional
        Overrides the dataset's direction of benefit (``--lower-is-better``).
    allow_scripts : bool
        Let the dataset folder's untrusted model scripts run (``--allow-scripts``).

    Returns
    -------
    AnalysisSpec

    Raises
    ------
    SpecError
        Neither a script nor an analysis of the dataset (one line, listing the analyses), or
        the analysis of a script that is not trusted (saying how to allow it).

    Warns
    -----
    UntrustedScriptsWarning
        When the dataset folder has model scripts that were not run.
    """
    if script_or_name is None and data is None:
        load_dataset(None)  # raises: no dataset given
    spec = _find_spec(script_or_name or "overall", data, allow_scripts)
    if higher_is_better is None:
        return spec
    return replace(spec, higher_is_better=higher_is_better)


def _find_spec(name: str, data: str | Path | None, allow_scripts: bool) -> AnalysisSpec:
    path = Path(name)
    if path.suffix == ".py" or path.is_file():
        spec = load_script(path)
        return replace(spec, data=str(data)) if data is not None else spec
    if data is None:
        raise SpecError(
            f"{name}: no such model script (an analysis name needs --data NAME|DIR|CSV|RM5)"
        )
    ds = load_dataset(data)
    specs, trust = _analyses(ds, allow_scripts)
    for spec in specs:
        if spec.name == name:
            _warn_untrusted(trust)
            return spec
    refused = untrusted_error(name, trust) if trust is not None else None
    if refused:
        raise SpecError(refused)
    known = ", ".join(s.name for s in specs)
    raise SpecError(f"{name}: no such analysis of {ds.name} (analyses: {known})")
