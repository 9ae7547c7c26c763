"""Which Bayesian analyses a dataset gets: its own model scripts, or the defaults.

A dataset folder with a ``models/`` folder of scripts is analysed by those scripts (in the
dataset's ``analysis_order``, then by name). Any other dataset gets the defaults, built from
what ``dataset.toml`` declares:

- ``overall``: binomial model, one common effect with trial random effects;
- ``normal_approximation``: the normal-normal model on each trial's log RR (bayesmeta's);
- one analysis per declared covariate with ``analyse = true``: a categorical covariate gives a
  meta-regression with its subgroups reported (subgroup RRs and their ratios), a continuous
  one a meta-regression whose slope is reported per unit.

``rebayes fit --data X NAME`` and ``rebayes compare --data X NAME`` accept the name of any of
these analyses as well as a path to a script.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rebayes.bayes.spec import AnalysisSpec, SpecError, load_script
from rebayes.data.trials import Dataset, load_dataset

__all__ = ["analysis_specs", "default_specs", "resolve_spec"]


def default_specs(dataset: Dataset) -> list[AnalysisSpec]:
    """Return the default analyses of a dataset (see the module docstring).

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


def _ordered(paths: list[Path], order: tuple[str, ...]) -> list[Path]:
    # Without a declared order: the overall answer first, the sensitivity analysis last.
    order = order or ("overall",)
    rank = {name: i for i, name in enumerate(order)}

    def key(p: Path) -> tuple[int, int, str]:
        last = p.stem == "normal_approximation" and p.stem not in rank
        return (int(last), rank.get(p.stem, len(rank)), p.stem)

    return sorted(paths, key=key)


def analysis_specs(dataset: Dataset | str | Path) -> list[AnalysisSpec]:
    """Return every analysis the report runs on a dataset: its scripts, else the defaults.

    Parameters
    ----------
    dataset : Dataset, str or Path
        A dataset or anything :func:`rebayes.data.trials.load_dataset` accepts.

    Returns
    -------
    list of AnalysisSpec
        Each bound to the dataset (``data`` set).
    """
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    data = ds.reference
    if ds.models_dir is not None:
        scripts = _ordered(sorted(ds.models_dir.glob("*.py")), ds.schema.analysis_order)
        return [replace(s, data=data) if s.data is None else s for s in map(load_script, scripts)]
    specs = default_specs(ds)
    order = ds.schema.analysis_order
    if order:
        rank = {name: i for i, name in enumerate(order)}
        specs.sort(key=lambda s: rank.get(s.name, len(rank)))
    return specs


def resolve_spec(
    script_or_name: str | None,
    data: str | Path | None,
    higher_is_better: bool | None = None,
) -> AnalysisSpec:
    """Return the analysis a command names: a script path, or one of the dataset's analyses.

    Parameters
    ----------
    script_or_name : str, optional
        A path to a model script, or the name of one of the dataset's analyses (its script's
        stem or a default analysis: ``overall``, ``normal_approximation``, a covariate's
        name). None: ``overall``.
    data : str or Path, optional
        The dataset (``--data``); overrides the script's own ``data``.
    higher_is_better : bool, optional
        Overrides the dataset's direction of benefit (``--lower-is-better``).

    Returns
    -------
    AnalysisSpec

    Raises
    ------
    SpecError
        Neither a script nor an analysis of the dataset (one line, listing the analyses).
    """
    if script_or_name is None and data is None:
        load_dataset(None)  # raises: no dataset given
    spec = _find_spec(script_or_name or "overall", data)
    if higher_is_better is None:
        return spec
    return replace(spec, higher_is_better=higher_is_better)


def _find_spec(name: str, data: str | Path | None) -> AnalysisSpec:
    path = Path(name)
    if path.suffix == ".py" or path.is_file():
        spec = load_script(path)
        return replace(spec, data=str(data)) if data is not None else spec
    if data is None:
        raise SpecError(
            f"{name}: no such model script (an analysis name needs --data NAME|DIR|CSV|RM5)"
        )
    ds = load_dataset(data)
    specs = analysis_specs(ds)
    for spec in specs:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in specs)
    raise SpecError(f"{name}: no such analysis of {ds.name} (analyses: {known})")
