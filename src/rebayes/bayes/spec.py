"""Analysis specs: what one analysis fits, declared in ``dataset.toml`` or in a short script.

A dataset declares analyses as data, an ``[[analyses]]`` table of these fields in its
``dataset.toml`` (:func:`rebayes.bayes.analyses.declared_specs`). A model script (a file named
on the command line, or one in a dataset folder's ``models/``, which runs only when trusted:
:mod:`rebayes.data.trust`) holds one :class:`AnalysisSpec` named ``SPEC``::

    import rebayes as rb

    SPEC = rb.AnalysisSpec(
        name="latitude",
        title="Does the effect change with latitude?",
        covariates=("ablat",),
        effect="contrast",
    )

    if __name__ == "__main__":
        rb.run_script(SPEC)

:func:`load_script` imports such a script and returns its spec. Every check that needs only
the spec happens when it is created; checks that need the data happen in
:func:`rebayes.bayes.design.build_design`. Errors are one-line :class:`SpecError`.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from rebayes.bayes.priors import BARTOS_SETS, PRIOR_SETS
from rebayes.errors import RebayesError

__all__ = ["AnalysisSpec", "SpecError", "load_script"]

Likelihood = Literal["binomial", "normal"]
EffectStructure = Literal["common", "contrast", "separate"]
MixedHandling = Literal["exclude", "share"]


class SpecError(RebayesError):
    """An analysis spec or model script is invalid (one-line message)."""


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class AnalysisSpec:
    """Declaration of one analysis: data, rows, effect structure, priors, seed.

    Parameters
    ----------
    name : str
        Short identifier (``"timing"``); names the fit in reports and the cache.
    title : str
        One line for humans.
    data : str, optional
        Shipped dataset name, dataset folder or CSV path. None: the dataset given on the
        command line (``--data``), or the dataset folder whose ``models/`` holds the script.
    variant : str, optional
        Data variant (``"a"``, ``"a+b"``); None = the dataset's default.
    likelihood : {"binomial", "normal"}
        Exact binomial per arm and row (log OR scale), or normal on each row's observed log RR
        with its RevMan variance (the normal-normal model of bayesmeta; log RR scale).
    split_by_stratum : bool
        True: one row per study x stratum (the dataset's declared ``strata`` column); False:
        a trial's strata are summed into one row (as RevMan sees a trial).
    strata : tuple of str, optional
        Which values of the strata column to use (before summing); None: every row.
    covariates : tuple of str
        Meta-regression terms: a covariate declared in ``dataset.toml`` (coded with its
        reference level) or any other column of the table (numbers as they are, text as
        indicators against its first level), and interactions written ``"a:b"`` (both main
        effects required).
    effect : {"common", "contrast", "separate"}
        ``common``: theta = d + tau z. ``contrast``: theta = d + X beta + tau z.
        ``separate``: one d per subgroup, common tau.
    mixed : {"exclude", "share"}
        How rows at a covariate's ``pooled`` level (a trial that did not report the split)
        enter an analysis using that covariate: left out, or with the share of the
        non-reference level that ``dataset.toml`` gives (rows with no known share are left
        out; the design's notes say which).
    subgroup : str or tuple of str
        Columns whose levels define the reported subgroups (and the groups of ``separate``).
        Two columns give their crossed cells.
    priors : tuple of str, optional
        Prior sets to fit by default; None = every built-in set.
    prior_file : str, optional
        TOML file with user prior sets (relative paths: to the working directory).
    seed : int
        Sampler seed; the same seed gives the same numbers.
    higher_is_better : bool, optional
        Overrides the dataset's direction of benefit (``--lower-is-better`` on a bare CSV);
        None: the dataset's declaration (higher is better when it declares none).
    """

    name: str
    title: str = ""
    data: str | None = None
    variant: str | None = None
    likelihood: Likelihood = "binomial"
    split_by_stratum: bool = False
    strata: tuple[str, ...] | None = None
    covariates: tuple[str, ...] = ()
    effect: EffectStructure = "common"
    mixed: MixedHandling = "exclude"
    subgroup: tuple[str, ...] = ()
    priors: tuple[str, ...] | None = None
    prior_file: str | None = None
    seed: int = 20230113
    higher_is_better: bool | None = None

    def __post_init__(self) -> None:
        for name in ("covariates", "subgroup"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        if self.strata is not None:
            object.__setattr__(self, "strata", _as_tuple(self.strata))
        if self.priors is not None:
            object.__setattr__(self, "priors", _as_tuple(self.priors))
        self._validate()

    def _fail(self, message: str) -> SpecError:
        return SpecError(f"spec '{self.name}': {message}")

    def _validate(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError("spec: name must be a non-empty string")
        for attr, allowed in (
            ("likelihood", get_args(Likelihood)),
            ("effect", get_args(EffectStructure)),
            ("mixed", get_args(MixedHandling)),
        ):
            value = getattr(self, attr)
            if value not in allowed:
                raise self._fail(f"{attr}={value!r} is not one of {', '.join(allowed)}")
        if self.strata is not None and not self.strata:
            raise self._fail("strata is empty (leave it out to use every row)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise self._fail(f"seed={self.seed!r} must be a non-negative integer")
        if not isinstance(self.split_by_stratum, bool):
            raise self._fail("split_by_stratum must be True or False")
        for term in self.covariates:
            parts = term.split(":")
            if any(not p for p in parts) or len(parts) > 2:
                raise self._fail(f"covariate {term!r}: write a term as 'a' or 'a:b'")
            if len(parts) == 2:
                missing = [p for p in parts if p not in self.covariates]
                if missing:
                    raise self._fail(
                        f"interaction {term!r} needs its main effect {missing[0]!r} in covariates"
                    )
        if len(set(self.covariates)) != len(self.covariates):
            raise self._fail("a covariate is listed twice")
        if self.effect == "common" and self.covariates:
            raise self._fail("effect='common' takes no covariates (use effect='contrast')")
        if self.effect == "common" and self.subgroup:
            raise self._fail(
                "effect='common' has one effect for every row: a subgroup needs "
                "effect='contrast' or 'separate'"
            )
        if self.effect == "contrast" and not self.covariates:
            raise self._fail("effect='contrast' needs at least one covariate")
        if self.effect == "separate" and not self.subgroup:
            raise self._fail("effect='separate' needs a subgroup column (one d per subgroup)")
        if self.mixed == "share" and not self.covariates:
            raise self._fail("mixed='share' sets a covariate's value: name it in covariates")
        if self.priors is not None:
            if not self.priors:
                raise self._fail("priors is empty (leave it out to use every built-in set)")
            if self.prior_file is None:
                unknown = [p for p in self.priors if p not in PRIOR_SETS and p not in BARTOS_SETS]
                if unknown:
                    raise self._fail(
                        f"unknown prior set {unknown[0]!r} (known: {', '.join(PRIOR_SETS)}; "
                        "user sets need prior_file)"
                    )

    @property
    def terms(self) -> tuple[str, ...]:
        """Every column the analysis reads: covariate main effects and subgroup columns."""
        mains = [part for term in self.covariates for part in term.split(":")]
        return tuple(dict.fromkeys([*mains, *self.subgroup]))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON friendly); it also keys the fit cache."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


def load_script(path: str | Path) -> AnalysisSpec:
    """Import a model script and return its ``SPEC``.

    Parameters
    ----------
    path : str or Path
        A Python file (in a dataset folder's ``models/``, or anywhere) that defines ``SPEC``.

    Returns
    -------
    AnalysisSpec

    Raises
    ------
    SpecError
        The file does not exist, does not import, or has no ``SPEC`` (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such model script")
    module_name = f"rebayes_model_script_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"{path}: not a Python script")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except RebayesError as exc:
        raise SpecError(f"{path}: {exc}") from None
    except SyntaxError as exc:
        raise SpecError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # a user script: report its failure as one line
        raise SpecError(f"{path}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(module_name, None)
    spec = getattr(module, "SPEC", None)
    if spec is None:
        raise SpecError(f"{path}: defines no SPEC (a rebayes.AnalysisSpec)")
    if not isinstance(spec, AnalysisSpec):
        raise SpecError(f"{path}: SPEC is a {type(spec).__name__}, not an rebayes.AnalysisSpec")
    # A relative data or prior-file path in a script means "next to the script" when such a
    # file exists there, so a script runs the same from any working directory.
    moved = {
        name: str(path.parent / value)
        for name in ("data", "prior_file")
        if (value := getattr(spec, name)) is not None
        and not Path(value).is_absolute()
        and (path.parent / value).exists()
    }
    # A script in a dataset folder's models/ analyses that dataset unless it names another.
    folder = path.resolve().parent.parent
    if spec.data is None and path.parent.name == "models" and (folder / "trials.csv").is_file():
        moved["data"] = str(folder)
    return replace(spec, **moved) if moved else spec  # type: ignore[arg-type]  # paths only
