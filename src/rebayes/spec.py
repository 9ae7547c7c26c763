"""Analysis specs: what one analysis fits, declared in a short script under ``models/``.

A model script holds one :class:`AnalysisSpec` named ``SPEC``::

    import rebayes as rb

    SPEC = rb.AnalysisSpec(
        name="timing",
        title="IVIG before vs after conception",
        covariates=("timing",),
        effect="contrast",
        subgroup="timing",
    )

    if __name__ == "__main__":
        rb.run_script(SPEC)

:func:`load_script` imports such a script and returns its spec. Every check that needs only
the spec happens when it is created; checks that need the data happen in
:func:`rebayes.design.build_design`. Errors are one-line :class:`SpecError`.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from rebayes.errors import RebayesError
from rebayes.priors import PRIOR_SETS

__all__ = ["AnalysisSpec", "SpecError", "load_script"]

Likelihood = Literal["binomial", "normal"]
EffectStructure = Literal["common", "contrast", "separate"]
MixedHandling = Literal["exclude", "share"]

STRATA: tuple[str, ...] = ("primary", "secondary", "mixed")
# Covariate derived from the stratum label rather than read from a column.
RSA_TYPE = "rsa_type"


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
    data : str
        Dataset name (``"ivig_rsa"``) or path to a trial-table CSV.
    variant : str, optional
        Data variant (``"seed_fit"``, ``"seed_fit+itt"``); None = the dataset's default.
    likelihood : {"binomial", "normal"}
        Exact binomial per arm and row (log OR scale), or normal on each row's observed log RR
        with its RevMan variance (the normal-normal model of bayesmeta; log RR scale).
    split_by_stratum : bool
        True: one row per study x stratum; False: a trial's strata are summed into one row
        (as RevMan sees a trial).
    strata : tuple of str
        Which strata rows to use (before summing): any of primary, secondary, mixed.
    covariates : tuple of str
        Meta-regression terms: ``rsa_type`` (secondary vs primary), ``timing`` (pre vs post
        conception), ``placebo`` (saline and multivitamin vs albumin), any other column of the
        table, and interactions written ``"rsa_type:timing"`` (both main effects required).
    effect : {"common", "contrast", "separate"}
        ``common``: theta = d + tau z. ``contrast``: theta = d + X beta + tau z.
        ``separate``: one d per subgroup, common tau.
    mixed : {"exclude", "share"}
        How ``mixed`` strata enter an analysis using ``rsa_type``: left out, or with their
        known share of secondary RSA as the covariate value (rows with no known share are left
        out; the design's notes say which).
    subgroup : str or tuple of str
        Columns whose levels define the reported subgroups (and the groups of ``separate``).
        Two columns (``("rsa_type", "timing")``) give their crossed cells.
    priors : tuple of str, optional
        Prior sets to fit by default; None = every built-in set.
    prior_file : str, optional
        TOML file with user prior sets (relative paths: to the working directory).
    seed : int
        Sampler seed; the same seed gives the same numbers.
    """

    name: str
    title: str = ""
    data: str = "ivig_rsa"
    variant: str | None = None
    likelihood: Likelihood = "binomial"
    split_by_stratum: bool = False
    strata: tuple[str, ...] = STRATA
    covariates: tuple[str, ...] = ()
    effect: EffectStructure = "common"
    mixed: MixedHandling = "exclude"
    subgroup: tuple[str, ...] = ()
    priors: tuple[str, ...] | None = None
    prior_file: str | None = None
    seed: int = 20230113

    def __post_init__(self) -> None:
        for name in ("strata", "covariates", "subgroup"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
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
        if not self.strata:
            raise self._fail("strata is empty")
        bad = [s for s in self.strata if s not in STRATA]
        if bad:
            raise self._fail(f"stratum {bad[0]!r} is not one of {', '.join(STRATA)}")
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
        if self.uses_rsa_type and not self.split_by_stratum:
            raise self._fail("rsa_type varies within trials: set split_by_stratum=True to use it")
        if self.mixed == "share":
            if RSA_TYPE not in self.covariates:
                raise self._fail("mixed='share' sets the rsa_type covariate: add it to covariates")
            if self.effect == "separate" and RSA_TYPE in self.subgroup:
                raise self._fail(
                    "mixed='share' cannot place a mixed row in one rsa_type subgroup "
                    "(use effect='contrast' or mixed='exclude')"
                )
        if self.priors is not None:
            if not self.priors:
                raise self._fail("priors is empty (leave it out to use every built-in set)")
            if self.prior_file is None:
                unknown = [p for p in self.priors if p not in PRIOR_SETS]
                if unknown:
                    raise self._fail(
                        f"unknown prior set {unknown[0]!r} (known: {', '.join(PRIOR_SETS)}; "
                        "user sets need prior_file)"
                    )

    @property
    def uses_rsa_type(self) -> bool:
        """Whether the analysis needs each row's RSA type (covariate or subgroup)."""
        return RSA_TYPE in self.subgroup or any(
            RSA_TYPE in term.split(":") for term in self.covariates
        )

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
        A Python file under ``models/`` (or anywhere) that defines ``SPEC``.

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
        and (path.parent / value).is_file()
    }
    return replace(spec, **moved) if moved else spec
