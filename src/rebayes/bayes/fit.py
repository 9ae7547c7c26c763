"""Fitting: one analysis under one or several prior sets, sampled or read from the cache.

:func:`fit` builds the design, puts the prior on the model's scale and keys the fit
(:func:`fit_key`); a fit already in the cache is read from it on first use
(:mod:`rebayes.store.fits`), any other is sampled: the structure's compiled model
(:func:`rebayes.bayes.compilation.compiled_model`), nutpie's run
(:func:`rebayes.bayes.nuts.run_nuts`, under :class:`~rebayes.bayes.settings.SamplerSettings`),
the fit's DataTree (:func:`rebayes.bayes.trees.assemble_tree`), queued for the cache. Seeded:
the same seed gives the same draws, and everything derived from them (prior draws,
replicated data) uses numpy generators seeded from it, so a fit is reproducible bit for bit.
:func:`fit_priors` fits one analysis under several prior sets, compiling its structure once;
:func:`compile_in_background` starts compiling, in a child process, what a report will need.

The key (:func:`fit_key`, under the one key rule :func:`rebayes.store.keys.content_key`)
hashes the analysed rows themselves, never the dataset's name, with the model-relevant spec
fields, prior, seed, sampler settings, the sampling libraries' versions and the source of the
modules that sample; names and titles are re-stamped on a cached fit when it is read
(:func:`rebayes.bayes.trees.provenance`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from rebayes import interrupt
from rebayes.bayes.compilation import compile_ahead, compiled_model, is_compiled
from rebayes.bayes.design import Design, build_design, prior_on_model_scale
from rebayes.bayes.exact_fit import exact_answers
from rebayes.bayes.nuts import run_nuts
from rebayes.bayes.priors import (
    DEFAULT_PRIOR,
    PriorSet,
    get_prior,
    load_prior_file,
    resolve_priors,
)
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.spec import AnalysisSpec
from rebayes.bayes.trees import assemble_tree, provenance, with_derived_groups
from rebayes.data.trial_table import TrialTable
from rebayes.display import ResultDisplay
from rebayes.errors import RebayesError
from rebayes.progress import phase
from rebayes.store.fits import (
    fit_path,
    flush_cache,
    is_fit_file,
    load_fit,
    read_failure,
    save_in_background,
)
from rebayes.store.keys import content_key, key_form, plain, stable_hash
from rebayes.store.paths import note_unreadable

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from rebayes.bayes.exact import ExactPosterior
    from rebayes.bayes.records import Coefficient, FitSummary
    from rebayes.checks.convergence import DiagnosticReport

__all__ = ["Fit", "compile_in_background", "fit", "fit_key", "fit_priors"]


@dataclass(frozen=True, eq=False, repr=False)
class Fit(ResultDisplay):
    """One analysis under one prior set: the DataTree and what produced it.

    ``repr`` is one line (analysis, prior, rows, pooled RR and P(benefit), led by
    ``UNRELIABLE`` or ``DIAGNOSTICS FAIL`` when the fit is either), :meth:`to_dataframe` the
    summary's quantities, :meth:`to_dict` its JSON record and :meth:`plot` the fit's forest
    plot (:class:`rebayes.results.Result`).

    Attributes
    ----------
    spec : AnalysisSpec
    prior : PriorSet
    design : Design
    tree : xarray.DataTree
        ArviZ groups (:mod:`rebayes.bayes.trees`); ``tree.attrs`` records spec, prior, data
        hash, variant, seed and sampler settings. A fit read from the cache loads its file
        on first use: its summary, diagnostics and sensitivity come from
        :meth:`derived` without the draws.
    seed : int
    settings : SamplerSettings
    key : str
        Hash identifying the fit (file name in the cache).
    path : Path or None
        Where the fit is cached (None when caching is off). What :meth:`derived` keeps is
        tied to the cached fit, so a Fit made by hand around other draws needs
        ``path=None``.
    from_cache : bool
        True when the fit was read from the cache rather than sampled.
    engine : {"nuts", "exact"}
        What answered. ``"exact"`` (``--engine exact|auto``): :attr:`exact` is the exact
        posterior, :meth:`summary` is computed from it by quadrature, the tree holds
        inverse-CDF draws for figures (:func:`rebayes.bayes.exact_tree.exact_tree`),
        :meth:`diagnostics` says there is no chain to check; its draws are made from the
        seed when first used and never stored, what is derived from it is (:meth:`derived`).
    """

    spec: AnalysisSpec
    prior: PriorSet
    design: Design
    _tree: xr.DataTree | None
    seed: int
    settings: SamplerSettings
    key: str
    path: Path | None
    from_cache: bool
    engine: str = "nuts"

    @property
    def exact(self) -> ExactPosterior | None:
        """The exact posterior when the exact engine answered, else None.

        Integrated on first use (tens of ms at 10 trials, about half a second at 136): a
        report that reads an exact fit's summary from the cache never integrates it.
        """
        if self.engine != "exact":
            return None
        if "_exact" not in self.__dict__:
            from rebayes.bayes.exact import exact_posterior

            with phase(f"integrating {self.spec.name}, prior {self.prior.name} (exact engine)"):
                post = exact_posterior(self.design, self.prior)
            # A Fit is frozen; the posterior is a pure function of its design and prior.
            object.__setattr__(self, "_exact", post)
        return self.__dict__["_exact"]  # type: ignore[no-any-return]

    @property
    def tree(self) -> xr.DataTree:
        """The fit's DataTree, read from the cache file on first use."""
        if self._tree is None and self.engine == "exact":
            from rebayes.bayes.exact_tree import exact_tree

            # Seeded draws from the exact posterior: the same tree every time it is built.
            post = self.exact
            assert post is not None  # the engine is "exact"
            tree = exact_tree(post, self.design, self.prior, self.seed, self.settings,
                              self.key)
            object.__setattr__(self, "_tree", tree)
            return tree
        if self._tree is None:
            assert self.path is not None  # only a cached fit starts without its tree
            try:
                tree = with_derived_groups(load_fit(self.path))
            except Exception as exc:  # noqa: BLE001 - damaged, truncated, foreign: a miss
                # Sample again (the same seed gives the same draws) and replace the file.
                note_unreadable(self.path, "cached fit", read_failure(exc))
                tree = _sample_tree(self.design, self.prior, self.seed, self.settings,
                                    self.key, self.path)
            # The same rows may have been fitted under other names: name them as asked now.
            tree.attrs.update(provenance(self.design, self.prior, self.key))
            object.__setattr__(self, "_tree", tree)
            return tree
        return self._tree

    @property
    def draws_loaded(self) -> bool:
        """Whether the draws are in memory.

        A cached fit reads its file on first use of :attr:`tree`; :meth:`release` lets the
        draws go again.
        """
        return self._tree is not None

    def release(self) -> None:
        """Free the draws from memory when the fit is on disk; :attr:`tree` reads them again.

        A report holds a hundred fits but needs the draws of a few once their summaries are
        made (:meth:`derived`); releasing the others keeps its memory to that of a few fits.
        """
        if self.path is None or self._tree is None:
            return
        if self.engine == "exact":  # its draws are made again from the seed when needed
            object.__setattr__(self, "_tree", None)
            return
        flush_cache()  # the file must be complete before the draws in memory may go
        if is_fit_file(self.path):
            object.__setattr__(self, "_tree", None)

    def summary(self) -> FitSummary:
        """Return the posterior summaries, once.

        From the draws (:func:`~rebayes.bayes.summary.summarize`), or, when the exact engine
        answered, by quadrature (:func:`~rebayes.bayes.exact_fit.exact_summary`: no Monte
        Carlo error; nothing is read from the draws).
        """
        if self.engine == "exact":
            from rebayes.bayes.exact_fit import exact_summary

            return self.derived("summary", lambda: exact_summary(self.design, self.prior,
                                                                 posterior=self.exact))
        from rebayes.bayes.summary import summarize

        return self.derived("summary", lambda: summarize(self.tree, self.diagnostics()))

    def diagnostics(self) -> DiagnosticReport:
        """Return the convergence gates (:func:`~rebayes.checks.convergence.diagnose`), once.

        An exact fit has no Markov chain to check (:func:`~rebayes.checks.convergence.no_chain`).
        """
        from rebayes.checks.convergence import diagnose, no_chain

        check = diagnose if self.engine == "nuts" else no_chain
        return self.derived("diagnostics", lambda: check(self.tree))

    def derived[T](self, name: str, compute: Callable[[], T], inputs: object = None) -> T:
        """Return ``compute()``, a pure function of this fit, computed once and kept.

        Kept in memory and, for a fit cached on disk, beside it
        (:mod:`rebayes.store.derived`: keyed by the fit, its attributes and the package's
        source), so later processes read it instead of computing it again.

        Parameters
        ----------
        name : str
            What it is (``"summary"``, ``"diagnostics"``, ``"sensitivity"``, ...): one name,
            one computation.
        compute : callable
            Computes it from this fit alone, or from this fit and ``inputs``.
        inputs : JSON-able, optional
            Anything else the result depends on (other fits' keys, a table's hash, labels):
            kept under ``name`` and a hash of ``inputs``, so other inputs compute it afresh.
        """
        from rebayes.store.derived import store_derived

        memo = self._memo()
        name = self._derived_name(name, inputs)
        if name not in memo:
            memo[name] = compute()
            if self.path is not None:
                store_derived(self.key, self._names(), memo)
        return memo[name]  # type: ignore[no-any-return]

    def has_derived(self, name: str, inputs: object = None) -> bool:
        """Whether :meth:`derived` has ``name`` (for ``inputs``) kept, in memory or on disk."""
        return self._derived_name(name, inputs) in self._memo()

    def _memo(self) -> dict[str, Any]:
        from rebayes.store.derived import load_derived

        if "_derived" not in self.__dict__:
            # A Fit is frozen; the memo is not a field (it is derived from ``tree``).
            stored = load_derived(self.key, self._names()) if self.path is not None else {}
            object.__setattr__(self, "_derived", stored)
        return self.__dict__["_derived"]  # type: ignore[no-any-return]

    @staticmethod
    def _derived_name(name: str, inputs: object) -> str:
        return name if inputs is None else f"{name} {stable_hash(plain(inputs))}"

    def _names(self) -> dict[str, Any]:
        """Return the names what is kept beside this fit is keyed by (:meth:`derived`).

        The attributes naming the fit as asked now (:func:`~rebayes.bayes.trees.provenance`)
        without the data's location: the rows are keyed already (the fit key) and no kept
        result shows the path, so a checkout elsewhere, or a copy of the data, reuses what is
        kept.
        """
        names = provenance(self.design, self.prior, self.key)
        spec = {k: v for k, v in self.design.spec.to_dict().items() if k != "data"}
        return {**names, "spec_json": json.dumps(spec)}

    def _short(self) -> str:
        s = self.summary()
        # A fit that failed its checks must never read like a plain result: say so first.
        if not s.reliable:
            flag = f"UNRELIABLE: {s.divergences} divergent transitions; "
        elif not s.diagnostics.ok:
            flag = f"DIAGNOSTICS FAIL ({len(s.diagnostics.failures)} gates); "
        else:
            flag = ""
        return (
            f"{flag}{self.spec.name}, prior {self.prior.name}, {self.design.n_rows} rows: "
            f"{s.pooled_kind} RR {s.pooled_rr.median:.2f} "
            f"[{s.pooled_rr.ci_low:.2f}, {s.pooled_rr.ci_high:.2f}], "
            + (f"P(harm: {s.direction.harm}) {s.p_harm:.3f}"
               if s.leans_to_harm and s.direction.declared
               else f"P({s.direction.benefit}) {s.p_benefit:.3f}")
        )

    def to_dataframe(self) -> pd.DataFrame:
        """Return the summary's quantities, one row each, indexed by ``quantity``.

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate`` (posterior median; the probability itself for a
            probability), ``ci_low``, ``ci_high`` (95% equal-tailed), ``hdi_low``,
            ``hdi_high``, ``mean``. Rows: pooled RR and OR, predictive RR, tau, typical
            control risk, risk difference, subgroup RRs and ratios, then the decision
            probabilities in the dataset's direction of benefit.
        """
        import pandas as pd

        s = self.summary()
        d = s.direction
        kind = s.pooled_kind
        estimates = [(f"{kind} RR", s.pooled_rr)]
        if s.pooled_or is not None:
            estimates.append((f"{kind} OR", s.pooled_or))
        estimates += [
            ("predictive RR (new trial)", s.predictive_rr),
            (f"tau ({s.effect_scale})", s.tau),
            ("control risk p0", s.typical_control_risk),
            ("risk difference", s.nnt.risk_difference),
            *((f"RR {g.name}", g.rr) for g in s.subgroups),
            *((f"predictive RR {g.name}", g.predictive) for g in s.subgroups
              if g.predictive is not None),
            *((f"RR ratio {r.name}", r.ratio) for r in s.ratios),
        ]
        probabilities = [
            (f"P({d.benefit})", s.p_benefit),
            (f"P({d.beyond(1.1)})", s.p_benefit_beyond_1_1),
            (f"P({d.beyond(1.25)})", s.p_benefit_beyond_1_25),
            (f"P({d.harm})", s.p_harm),
            *((f"P({d.benefit} | {g.name})", g.p_benefit) for g in s.subgroups),
            *((f"P(RR ratio > 1 | {r.name})", r.p_gt_1) for r in s.ratios),
        ]
        rows = [
            {"quantity": name, "estimate": e.median, "ci_low": e.ci_low, "ci_high": e.ci_high,
             "hdi_low": e.hdi_low, "hdi_high": e.hdi_high, "mean": e.mean}
            for name, e in estimates
        ]
        rows += [{"quantity": name, "estimate": p} for name, p in probabilities]
        return pd.DataFrame(rows).set_index("quantity")

    def to_dict(self) -> dict[str, Any]:
        """Return the fit's JSON record (:func:`rebayes.bayes.fit_record.fit_record`).

        What ``rebayes fit --json`` prints per prior: the summary's fields, the
        meta-regression coefficients and P(pooled OR > t).
        """
        from rebayes.bayes.fit_record import fit_record

        return fit_record(self.summary(), self.coefficients(), self.or_probabilities())

    def coefficients(self) -> list[Coefficient]:
        """Return the meta-regression coefficients: exact where the exact engine answered.

        :func:`~rebayes.bayes.exact_fit.exact_coefficients`, else from the draws
        (:func:`~rebayes.bayes.coefficients.coefficients`); empty without covariates.
        """
        if self.engine == "exact":
            from rebayes.bayes.exact_fit import exact_coefficients

            assert self.exact is not None
            return exact_coefficients(self.exact, self.design)
        from rebayes.bayes.coefficients import coefficients

        return coefficients(self.tree)

    def or_probabilities(self) -> dict[str, float]:
        """Return P(pooled OR > t) per threshold: exact where the exact engine answered.

        :func:`~rebayes.bayes.exact_fit.exact_or_probabilities`, else from the draws
        (:func:`~rebayes.bayes.coefficients.pooled_or_probabilities`).
        """
        if self.engine == "exact":
            from rebayes.bayes.exact_fit import exact_or_probabilities

            assert self.exact is not None
            return exact_or_probabilities(self.exact)
        from rebayes.bayes.coefficients import pooled_or_probabilities

        return pooled_or_probabilities(self.tree)

    def plot(self) -> Figure:
        """Draw the fit's forest plot (:func:`rebayes.plots.fit_forest.fit_forest`)."""
        from rebayes.plots.fit_forest import fit_forest

        s = self.summary()
        rrs = None
        if any(t.scale != "rr" for t in s.trials):
            # The exact record gives each trial's shrunken odds ratio; the figure shows the RR
            # at the row's own baseline, read from the fit's draws as NUTS's record reads it.
            from rebayes.bayes.quantities import estimate, trial_rrs

            draws = trial_rrs(self.tree)
            rrs = {str(row): estimate(draws.sel(row=row)) for row in draws["row"].values}
        return fit_forest(self.design.table(), s,
                          f"{self.spec.title or self.spec.name} — prior: {self.prior.name}", rrs)


# Design fields naming where the rows came from; the rows themselves are keyed instead.
_PROVENANCE_FIELDS = frozenset({"spec", "dataset", "variant", "data_hash"})
# Spec fields that only name or locate things: the design's rows, the prior's parameters and
# the seed (keyed on their own) carry what they change.
_NAMING_SPEC_FIELDS = frozenset(
    {"name", "title", "data", "variant", "priors", "prior_file", "seed"}
)


def fit_key(
    design: Design, prior: PriorSet, seed: int, settings: SamplerSettings, engine: str = "nuts"
) -> str:
    """Hash of everything that changes a fit's numbers or its reported rows and labels.

    Keyed: every array and label of the design (counts, log RRs and variances, design matrix,
    study and subgroup indices, row labels, coefficient and subgroup names, ratios, notes),
    the spec fields that shape the model (likelihood, effect, strata, covariates, ...), the
    prior's parameters, the seed and the sampler settings, under
    :func:`~rebayes.store.keys.content_key` (which adds the sampling libraries' versions and
    the source of the modules that sample). Not keyed: the dataset's name or path, the
    variant's name, the table's hash and the spec's name and title, so the same rows share one
    fit whatever they are called, and two different tables never do (those names are
    re-stamped on a fit read from the cache). The engine is keyed when it is not NUTS (a NUTS
    fit keeps the key it always had).
    """
    payload: dict[str, Any] = {
        "design": {
            f.name: key_form(getattr(design, f.name))
            for f in fields(design)
            if f.name not in _PROVENANCE_FIELDS
        },
        "spec": {k: v for k, v in design.spec.to_dict().items() if k not in _NAMING_SPEC_FIELDS},
        "prior": prior.to_dict(),
        "seed": seed,
        "settings": asdict(settings),
    }
    if engine != "nuts":
        payload["engine"] = engine
    return content_key("fit", payload)


def fit(
    spec: AnalysisSpec,
    prior: str | PriorSet = DEFAULT_PRIOR,
    *,
    variant: str | None = None,
    seed: int | None = None,
    settings: SamplerSettings | None = None,
    cache: bool = True,
    design: Design | None = None,
    on_progress: Callable[[int], None] | None = None,
    cores: int | None = None,
    trials: TrialTable | None = None,
    engine: str = "nuts",
    on_fallback: Callable[[str], None] | None = None,
) -> Fit:
    """Fit one analysis under one prior set (or read it from the cache).

    Parameters
    ----------
    spec : AnalysisSpec
    prior : str or PriorSet
        A registry name (user sets: give ``spec.prior_file``) or a PriorSet.
    variant : str, optional
        Data variant; default ``spec.variant``.
    seed : int, optional
        Default ``spec.seed``.
    settings : SamplerSettings, optional
        Draws, tuning steps and chains.
    cache : bool
        Read and write the fit cache.
    design : Design, optional
        A design already built for this spec and variant (saves rebuilding it).
    on_progress : callable, optional
        Called from a background thread with the number of draws done so far (all chains,
        tuning included), for progress bars.
    cores : int, optional
        Threads the chains are sampled on (default: one per core, up to one per chain). The
        draws do not depend on it: each chain has its own random stream.
    trials : TrialTable, optional
        The table already loaded (:func:`rebayes.load_table`, the variant applied); default:
        load ``spec.data`` under ``variant``. Unused when ``design`` is given.
    engine : {"nuts", "exact", "auto"}
        What answers (:func:`rebayes.bayes.exact_fit.exact_answers`): NUTS (the default),
        the exact engine (an error when the analysis is beyond its reach), or the exact
        engine where it can answer and NUTS otherwise. An exact fit's draws are never
        stored; what is derived from it is cached as for a NUTS fit.
    on_fallback : callable, optional
        With ``engine="auto"``: called with the reason when NUTS answers instead.

    Returns
    -------
    Fit

    Examples
    --------
    >>> import rebayes as rb
    >>> spec = rb.load_script("models/overall.py")                     # doctest: +SKIP
    >>> rb.fit(spec, "skeptical").summary().p_benefit                  # doctest: +SKIP
    0.83
    """
    settings = settings or SamplerSettings()
    seed = spec.seed if seed is None else seed
    if not isinstance(prior, PriorSet):
        extra = load_prior_file(spec.prior_file) if spec.prior_file else None
        prior = get_prior(prior, extra)
    if design is None:
        design = build_design(spec, trials, variant=variant)
    prior = prior_on_model_scale(prior, design)
    if exact_answers(design, [prior], engine, on_fallback):
        return _exact_fit(spec, design, prior, seed, settings, cache)
    key = fit_key(design, prior, seed, settings)
    path = fit_path(key) if cache else None
    if path is not None and is_fit_file(path):
        # Read on first use (Fit.tree): a cached report needs most fits' summaries only.
        return Fit(spec, prior, design, None, seed, settings, key, path, True)
    if path is not None and os.path.lexists(path):
        why = "a folder, not a file" if path.is_dir() else "not a NetCDF file"
        note_unreadable(path, "cached fit", why)
    tree = _sample_tree(design, prior, seed, settings, key, path, on_progress, cores)
    return Fit(spec, prior, design, tree, seed, settings, key, path, False)


def _exact_fit(
    spec: AnalysisSpec, design: Design, prior: PriorSet, seed: int, settings: SamplerSettings,
    cache: bool,
) -> Fit:
    """Answer a fit by quadrature: its exact posterior and draws integrated when first used.

    Its draws are not stored (the seed makes them again, in about a second at 136 rows):
    with ``cache`` only what is derived from it (summary, checks, sensitivity) is kept, under
    its key (:meth:`Fit.derived`), so a cached exact fit takes kilobytes whatever its size.
    """
    key = fit_key(design, prior, seed, settings, engine="exact")
    path = fit_path(key) if cache else None
    return Fit(spec, prior, design, None, seed, settings, key, path, False, "exact")


def _sample_tree(
    design: Design,
    prior: PriorSet,
    seed: int,
    settings: SamplerSettings,
    key: str,
    path: Path | None,
    on_progress: Callable[[int], None] | None = None,
    cores: int | None = None,
) -> xr.DataTree:
    """Sample a fit and queue it for the cache (when ``path`` is given)."""
    compiled = compiled_model(design, prior)
    raw = run_nuts(compiled, settings, seed, on_progress, cores)
    tree = assemble_tree(raw, design, prior, seed, settings, key)
    if path is not None:
        save_in_background(tree, path)
    return tree


def fit_priors(
    spec: AnalysisSpec,
    priors: Iterable[str | PriorSet] | None = None,
    *,
    variant: str | None = None,
    seed: int | None = None,
    settings: SamplerSettings | None = None,
    cache: bool = True,
    progress: bool = False,
    on_fit: Callable[[Fit], None] | None = None,
    cores: int | None = None,
    trials: TrialTable | None = None,
    engine: str = "nuts",
    on_fallback: Callable[[str], None] | None = None,
) -> list[Fit]:
    """Fit one analysis under several prior sets, compiling its structure once.

    Parameters
    ----------
    spec : AnalysisSpec
    priors : iterable of str or PriorSet, optional
        Default: ``spec.priors``, or every built-in set (and the spec's user sets).
    variant, seed, settings, cache
        As for :func:`fit`.
    progress : bool
        Show one progress bar (stderr) over all the fits.
    on_fit : callable, optional
        Called with each fit as soon as it is sampled (or read from the cache).
    cores, trials, engine, on_fallback : optional
        As for :func:`fit`; the engine is chosen per prior set (one may be within the exact
        engine's reach and another not).

    Returns
    -------
    list of Fit
        In the order of ``priors``.
    """
    settings = settings or SamplerSettings()
    with phase("loading the table and building the design"):
        design = build_design(spec, trials, variant=variant)
    prior_sets = _prior_sets(spec, priors, design)
    bar = None
    per_fit = settings.chains * (settings.tune + settings.draws)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=per_fit * len(prior_sets), unit="draw", desc=spec.name, leave=False,
                   disable=None)
    fits = []
    try:
        for i, prior_set in enumerate(prior_sets):
            interrupt.check()
            on_progress = None
            done = [0]
            if bar is not None:
                compiling = not is_compiled(design)
                bar.set_postfix_str(prior_set.name
                                    + (" (compiling the model once)" if compiling else ""))
                done_before = i * per_fit

                def on_progress(draws: int, _base: int = done_before, _done: list[int] = done
                                ) -> None:
                    _done[0] = draws
                    # An extended run restarts its count: never move the bar backwards.
                    bar.n = max(bar.n, _base + min(draws, per_fit))
                    bar.refresh()

            def share(_done: list[int] = done) -> str:
                return f"{min(100, 100 * _done[0] // per_fit)}% of the draws"

            # Without a bar on the screen (not a terminal), a line now and then instead; an
            # exact fit says its own phase (_exact_fit).
            sampling = (phase(f"sampling {spec.name}, prior {prior_set.name}", share)
                        if bar is not None and bar.disable and not _exact_reaches(
                            design, prior_set, engine) else contextlib.nullcontext())
            with sampling:
                fitted = fit(
                    spec,
                    prior_set,
                    variant=variant,
                    seed=seed,
                    settings=settings,
                    cache=cache,
                    design=design,
                    on_progress=on_progress,
                    cores=cores,
                    engine=engine,
                    on_fallback=on_fallback,
                )
            fits.append(fitted)
            if on_fit is not None:
                on_fit(fits[-1])
            if bar is not None:
                bar.n = (i + 1) * per_fit
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return fits


def _exact_reaches(design: Design, prior: PriorSet, engine: str) -> bool:
    """Whether :func:`fit` will answer by quadrature (its decision, without a word said)."""
    with contextlib.suppress(RebayesError):  # --engine exact beyond reach: fit() says it
        return exact_answers(design, [prior_on_model_scale(prior, design)], engine)
    return False


def _prior_sets(
    spec: AnalysisSpec, priors: Iterable[str | PriorSet] | None, design: Design
) -> list[PriorSet]:
    """Return the prior sets :func:`fit_priors` fits: ``priors``, else the spec's, resolved.

    Without names: the sets that fit the dataset's outcome type (its Turner set only).
    """
    names = priors if priors is not None else spec.priors
    return resolve_priors(names, spec.prior_file, outcome_type=design.schema.outcome_type)


def compile_in_background(
    analyses: Iterable[tuple[AnalysisSpec, str | None, TrialTable | None]],
    priors: Iterable[str | PriorSet] | None = None,
    settings: SamplerSettings | None = None,
    engine: str = "nuts",
) -> None:
    """Start compiling the structures these (spec, variant, table) need, in a child process.

    For a caller about to fit many analyses (a report): see
    :func:`rebayes.bayes.compilation.compile_ahead`. Structures already compiled in this
    process or on disk are skipped, and so are those whose fits under ``priors`` (as for
    :func:`fit_priors`) are all in the fit cache: a report from cached fits then loads
    neither numba nor the compiled models, and so are those the exact engine answers under
    ``engine`` (as for :func:`fit`). :func:`fit` waits for the child when it needs one.
    A table given is the variant's, already loaded (None: load ``spec.data``).
    """
    settings = settings or SamplerSettings()
    jobs = []
    for spec, variant, table in analyses:
        try:
            design = build_design(spec, table, variant=variant)
            sets = _prior_sets(spec, priors, design)
        except RebayesError:
            continue  # reported where the analysis is fitted, as before
        on_scale = [prior_on_model_scale(p, design) for p in sets]
        on_scale = [p for p in on_scale if not _exact_reaches(design, p, engine)]
        if not on_scale:
            continue
        cached = all(
            is_fit_file(fit_path(fit_key(design, p, spec.seed, settings))) for p in on_scale
        )
        if not is_compiled(design) and not cached:
            # Any prior will do: the compiled code depends on the structure only.
            jobs.append((design, on_scale[0]))
    compile_ahead(jobs)  # without jobs: ends a spare child (compilation.start_compiler)
