"""Figures that show whether a fit can be trusted: rank, trace, PPC, prior vs posterior, LOO.

Rank and trace plots come from arviz-plots (fractional-rank Δ-ECDF with the multi-chain
uniformity test; trace with the marginal density per chain); the others are drawn with matplotlib
over arviz-stats and :mod:`rebayes.checks` output, so that rows carry trial names and
axes carry units. Every function returns a :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import arviz_plots as azp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from arviz_stats.base import array_stats  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from rebayes.bayes.priors import PriorSet  # noqa: E402
from rebayes.checks.convergence import reported_quantities
from rebayes.checks.loo import prior_from_tree
from rebayes.checks.ppc import ppc_table, trial_ppc_table
from rebayes.data.direction import Direction  # noqa: E402
from rebayes.plots.forest import ratio_ticks  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

    from rebayes.checks.loo import TrialLOO

__all__ = [
    "pareto_k_plot",
    "ppc_plot",
    "trial_ppc_plot",
    "prior_from_tree",
    "prior_posterior_plot",
    "rank_plot",
    "trace_plot",
]

POSTERIOR = "#1f4e79"
PRIOR = "#7f7f7f"
OBSERVED = "#111111"
BAD = "#c00000"


def _safe_log(x: Any) -> Any:
    """Log for a secondary ratio axis: matplotlib also probes it at 0."""
    return np.log(np.clip(x, 1e-12, None))


def _units(tree: xr.DataTree) -> dict[str, str]:
    """Axis labels with units for the quantities of rank and trace plots."""
    scale = str(tree.attrs.get("effect_scale", "log OR"))
    direction = Direction.of(tree)
    return {
        "d": f"d ({scale})",
        "beta": f"beta (log ratio of {'ORs' if scale == 'log OR' else 'RRs'})",
        "tau": f"tau ({scale} scale)",
        "pooled_rr": f"pooled RR ({direction.treatment} / {direction.control})",
    }


def _title(tree: xr.DataTree, what: str) -> str:
    attrs = tree.attrs
    parts = [str(attrs.get("analysis", "")), f"prior {attrs.get('prior', '?')}"]
    variant = attrs.get("variant")
    if variant:
        parts.append(f"{variant} data")
    return f"{what}\n{', '.join(p for p in parts if p)}"


def _figure(pc: Any) -> Figure:
    """Return the matplotlib Figure behind an arviz-plots PlotCollection."""
    fig = pc.viz["figure"]
    return fig.item() if hasattr(fig, "item") else fig


def _main_quantities(tree: xr.DataTree) -> xr.Dataset:
    """d, beta, tau and the pooled RR per draw (what rank and trace plots show)."""
    posterior = tree["posterior"].to_dataset()
    keep = [v for v in ("d", "beta", "tau") if v in posterior]
    derived = reported_quantities(tree)
    return xr.merge([posterior[keep], derived[["pooled_rr"]]], compat="override")


def _sub_tree(tree: xr.DataTree, var_names: Sequence[str] | None) -> xr.DataTree:
    """Return a tree with the chosen quantities (derived ones included) and sample_stats."""
    quantities = _main_quantities(tree)
    if var_names is not None:
        posterior = tree["posterior"].to_dataset()
        derived = reported_quantities(tree)
        quantities = xr.merge(
            [(posterior if v in posterior else derived)[[v]] for v in var_names],
            compat="override",
        )
    groups = {"posterior": quantities}
    if "sample_stats" in tree.children:
        groups["sample_stats"] = tree["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(groups)


def _thinning_factor(draws: xr.Dataset) -> int:
    """Thinning that leaves draws near independence, judged within each chain.

    Säilynoja et al.'s rule (arviz-stats' ``thin(factor="auto")``) divides by the ESS of all
    chains together, which collapses when the chains disagree: it left 2 draws per chain of
    two chains 4 posterior SDs apart, and the test could no longer see them. Here the ESS
    (bulk and tail, the smaller) is summed over the chains each taken alone.
    """
    import arviz_stats as azs

    n_chains, n_draws = draws.sizes["chain"], draws.sizes["draw"]
    within = 0.0
    for chain in range(n_chains):
        one = draws.isel(chain=[chain])
        ess = min(
            float(azs.ess(one, method=method, sample_dims=["chain", "draw"])
                  .to_array().min())
            for method in ("bulk", "tail")
        )
        within += max(ess, 1.0) if np.isfinite(ess) else float(n_draws)
    return max(1, int(np.ceil(n_chains * n_draws / within)))


def rank_plot(tree: xr.DataTree, var_names: Sequence[str] | None = None) -> Figure:
    """Rank plots per chain (arviz-plots' fractional-rank Δ-ECDF with its multi-chain test).

    Parameters
    ----------
    tree : xarray.DataTree
    var_names : sequence of str, optional
        Posterior parameters or derived quantities (:func:`rebayes.diagnostics.
        reported_quantities`); default ``d``, ``beta``, ``tau`` and ``pooled_rr``.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per scalar quantity, each with the p value of the multi-chain uniformity
        test (Säilynoja et al. 2022, corrected for testing every rank) on draws thinned to
        near independence; a p below the panel's alpha, with the offending points marked,
        says the chains sample different distributions. arviz-plots' default method; the
        simulated 99% envelope it replaces took 1.9 s per figure against 0.3 s.
    """
    data = _sub_tree(tree, var_names)
    n_panels = sum(int(np.prod(v.shape[2:])) for v in data["posterior"].data_vars.values())
    cols = min(4, n_panels)
    rows = int(np.ceil(n_panels / cols))
    pc = azp.plot_rank(
        data,
        method="mtc_c",
        # The test assumes independent draws: unthinned, autocorrelation alone rejects it
        # (a shipped meta-regression's tau: p = 0.00 unthinned, 0.82 thinned; R-hat 1.005).
        thin=True,
        stats={"thin": {"factor": _thinning_factor(data["posterior"].to_dataset())}},
        backend="matplotlib",
        col_wrap=cols,
        figure_kwargs={"figsize": (3.2 * cols + 0.6, 2.6 * rows + 1.0)},
    )
    fig = _figure(pc)
    for ax in fig.axes:
        ax.set_xlabel("fractional rank over all chains")
    fig.axes[0].set_ylabel("Δ-ECDF (chain - uniform)")
    handles = [
        Line2D([], [], color=f"C{i}", label=f"chain {c}")
        for i, c in enumerate(np.asarray(tree["posterior"]["chain"]))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(
        _title(tree, "Rank plots: p < α (multi-chain uniformity test) says the chains disagree"),
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.98))
    return fig


def trace_plot(tree: xr.DataTree, var_names: Sequence[str] | None = None) -> Figure:
    """Trace and marginal density per chain (arviz-plots ``plot_trace_dist``).

    Parameters
    ----------
    tree : xarray.DataTree
    var_names : sequence of str, optional
        As for :func:`rank_plot`.

    Returns
    -------
    matplotlib.figure.Figure
        Divergent transitions, if any, are marked under the traces.
    """
    data = _sub_tree(tree, var_names)
    n_rows = sum(int(np.prod(v.shape[2:])) for v in data["posterior"].data_vars.values())
    pc = azp.plot_trace_dist(
        data,
        backend="matplotlib",
        figure_kwargs={"figsize": (11.0, 1.9 * n_rows + 1.2)},
    )
    fig = _figure(pc)
    units = _units(tree)
    for ax in fig.axes:
        for get, set_ in ((ax.get_xlabel, ax.set_xlabel), (ax.get_ylabel, ax.set_ylabel)):
            if get() in units:
                set_(units[get()])
        if ax.get_xlabel() == "Draw":
            ax.set_xlabel("draw (after warm-up), chains by line style")
    fig.suptitle(
        _title(tree, "Trace plots: chains should overlap and look like stationary noise"),
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def ppc_plot(tree: xr.DataTree, prob: float = 0.95) -> Figure:
    """Posterior predictive check per row and arm: observed vs replicated event counts.

    Parameters
    ----------
    tree : xarray.DataTree
    prob : float
        Mass of the replication interval (a 50% interval is drawn inside it).

    Returns
    -------
    matplotlib.figure.Figure
        Binomial model: one panel per arm (control, then treatment, titled with the
        dataset's labels), one line per analysed row, on the scale of the proportion with the
        event, with the observed count printed. Normal model:
        one panel of observed vs replicated log RR per row. An observation outside its
        replication interval is drawn in red.
    """
    table = ppc_table(tree, prob=prob)
    direction = Direction.of(tree)
    arm_names = {"control": direction.control, "treat": direction.treatment}
    name = "events" if (table["arm"] != "log_rr").any() else "log_rr"
    rows = list(dict.fromkeys(table["row"]))
    arms = list(dict.fromkeys(table["arm"]))
    y = np.arange(len(rows))[::-1]
    fig, axes = plt.subplots(
        1,
        len(arms),
        figsize=(5.2 * len(arms) + 2.4, 0.42 * len(rows) + 2.0),
        sharey=True,
        squeeze=False,
    )
    for ax, arm in zip(axes[0], arms, strict=True):
        part = table[table["arm"] == arm].set_index("row").loc[rows]
        # Counts become proportions so that arms of different sizes share one axis.
        scale = part["n"].to_numpy(float) if name == "events" else np.ones(len(rows))
        low50, high50 = part["rep_low_inner"] / scale, part["rep_high_inner"] / scale
        low, high = part["rep_low"] / scale, part["rep_high"] / scale
        observed = part["observed"] / scale
        ax.hlines(y, low, high, color=POSTERIOR, alpha=0.35, lw=2)
        ax.hlines(y, low50, high50, color=POSTERIOR, lw=5)
        colors = [OBSERVED if w else BAD for w in part["within"]]
        ax.scatter(observed, y, color=colors, zorder=3, s=28)
        if name == "events":
            for yi, (_, r) in zip(y, part.iterrows(), strict=True):
                ax.annotate(
                    f"{int(r['observed'])}/{int(r['n'])}",
                    (1.0, yi),
                    xycoords=("axes fraction", "data"),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                    color=OBSERVED if r["within"] else BAD,
                )
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel(f"participants with {direction.outcome} / participants in the arm")
            ax.set_title(f"{arm_names.get(arm, arm)} arm", fontsize=10)
        else:
            ax.set_xlabel(f"observed log RR of {direction.outcome}")
            ax.set_title("log RR per row", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, rows, fontsize=9)
    handles = [
        Line2D([], [], color=POSTERIOR, lw=5, label="replicated, 50% interval"),
        Line2D([], [], color=POSTERIOR, lw=2, alpha=0.35, label=f"replicated, {prob:.0%} interval"),
        Line2D([], [], color=OBSERVED, marker="o", ls="", label="observed"),
        Line2D([], [], color=BAD, marker="o", ls="", label="observed, outside interval"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=9)
    fig.suptitle(
        _title(tree, "Posterior predictive check: observed vs replicated data"), fontsize=11
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.98))
    return fig


def trial_ppc_plot(
    tree: xr.DataTree, prob: float = 0.95, table: pd.DataFrame | None = None
) -> Figure:
    """Trial-level mixed predictive check: each trial's OR (RR) against a new similar trial's.

    One line per trial: the replicated 95% (thin) and 50% (thick) range of a new trial's
    effect with the same arm sizes and baselines and a fresh random effect
    (:func:`rebayes.checks.ppc.trial_ppc_table`), and the observed effect (point; red when
    outside the 95% range), on a log ratio axis. ``table``: that function's result for
    ``tree`` and ``prob``, when the caller has it already (the replication is not redone).
    """
    if table is None:
        table = trial_ppc_table(tree, prob=prob)
    ratio = "OR" if table["scale"].iloc[0] == "log OR" else "RR"
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(table) + 1.9))
    ax.hlines(y, table["rep_low"], table["rep_high"], color=POSTERIOR, alpha=0.35, lw=2)
    ax.hlines(y, table["rep_low_inner"], table["rep_high_inner"], color=POSTERIOR, lw=5)
    colors = [OBSERVED if w else BAD for w in table["within"]]
    ax.scatter(table["observed"], y, color=colors, zorder=3, s=28)
    ax.axvline(0, color="0.6", lw=0.8)
    values = np.concatenate([table[c].to_numpy(float) for c in ("rep_low", "rep_high",
                                                                 "observed")])
    lo, hi = np.nanmin(values), np.nanmax(values)
    ticks = ratio_ticks(lo, hi)
    ax.set_xticks(np.log(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(y, table["trial"], fontsize=9)
    ax.set_xlabel(f"{ratio} of {Direction.of(tree).outcome} (log scale)")
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], color=POSTERIOR, lw=5, label="new similar trial, 50%"),
        Line2D([], [], color=POSTERIOR, lw=2, alpha=0.35, label=f"new similar trial, {prob:.0%}"),
        Line2D([], [], color=OBSERVED, marker="o", ls="", label="observed"),
        Line2D([], [], color=BAD, marker="o", ls="", label="observed, outside"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=8)
    ax.set_title(_title(tree, "Trial-level check: observed effect vs a new trial like it"),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _panels(tree: xr.DataTree, prior: PriorSet) -> list[tuple[str, np.ndarray, Any, str]]:
    """(label, posterior draws, prior distribution, x label) per scalar d, beta and tau."""
    posterior = tree["posterior"].to_dataset()
    scale = str(tree.attrs.get("effect_scale", "log OR"))
    # In a meta-regression d (and its prior) is the effect where the design centres X.
    at = str(tree.attrs.get("intercept_at", ""))
    out = []
    for name, dist, unit in (
        ("d", prior.effect, f"{scale}" + (f"\n{textwrap.fill(at, 45)}" if at else "")),
        ("beta", prior.covariate, "log ratio of ORs" if scale == "log OR" else "log ratio of RRs"),
        ("tau", prior.tau, f"between-trial SD, {scale} scale"),
    ):
        if name not in posterior:
            continue
        values = posterior[name]
        extra = [dim for dim in values.dims if dim not in ("chain", "draw")]
        if not extra:
            out.append((name, values.values.ravel(), dist.frozen(), unit))
            continue
        for label in values[extra[0]].values:
            out.append(
                (
                    f"{name}[{label}]",
                    values.sel({extra[0]: label}).values.ravel(),
                    dist.frozen(),
                    unit,
                )
            )
    return out


def prior_posterior_plot(tree: xr.DataTree, prior: PriorSet | None = None) -> Figure:
    """Prior (dashed, exact density) vs posterior (filled, KDE) of d, beta and tau.

    Parameters
    ----------
    tree : xarray.DataTree
    prior : PriorSet, optional
        Default: rebuilt from the tree (:func:`prior_from_tree`). Either way its effect prior
        is drawn as the model used it, its mean turned towards benefit
        (:meth:`~rebayes.bayes.priors.PriorSet.oriented`).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter, on the range where the posterior lives (the prior's density
        is drawn exactly there; a nearly flat dashed line means the prior barely matters).
        Effects get a second axis on the ratio scale, with the side each arm is favoured on
        (the dataset's direction of benefit).
    """
    direction = Direction.of(tree)
    stated = prior or prior_from_tree(tree)  # as named: its effect mean towards benefit
    prior = stated.oriented(direction.higher_is_better)  # as the model used it
    left, right = direction.favours
    panels = _panels(tree, prior)
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.3 * rows + 0.9), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.remove()
    for ax, (label, draws, dist, unit) in zip(axes.ravel(), panels, strict=False):
        lo, hi = np.quantile(draws, [0.001, 0.999])
        width = hi - lo
        lo, hi = lo - 0.5 * width, hi + 0.5 * width
        positive = label == "tau"
        if positive:
            lo = 0.0
        grid, pdf, _ = array_stats.kde(draws, bound_correction=positive)
        ax.fill_between(grid, pdf, color=POSTERIOR, alpha=0.35, lw=0)
        ax.plot(grid, pdf, color=POSTERIOR, lw=1.5, label="posterior")
        x = np.linspace(max(lo, 1e-6) if positive else lo, hi, 400)
        ax.plot(x, dist.pdf(x), color=PRIOR, lw=1.5, ls="--", label="prior")
        if not positive:
            ax.axvline(0, color="#999999", lw=0.8)
            top = ax.secondary_xaxis("top", functions=(np.exp, _safe_log))
            ratios = ratio_ticks(lo, hi)
            top.set_xticks(ratios, [f"{r:g}" for r in ratios])
            top.set_xlabel("ratio scale (exp)", fontsize=8)
            top.tick_params(labelsize=8)
            # One side per line, so that long arm names do not run into each other.
            ax.text(0.01, 0.98, f"< {left}", transform=ax.transAxes, va="top", fontsize=7,
                    color="#555555")
            ax.text(0.99, 0.91, f"{right} >", transform=ax.transAxes, va="top", ha="right",
                    fontsize=7, color="#555555")
        ax.set_xlim(lo, hi)
        ax.set_ylim(bottom=0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(unit, fontsize=9)
        ax.set_ylabel("density", fontsize=9)
    axes[0][0].legend(fontsize=8, frameon=False)
    effect = textwrap.fill(f"effect prior: {stated.effect_description(direction)}", 110)
    fig.suptitle(_title(tree, f"Prior vs posterior under {prior.name}\n{effect}"), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def pareto_k_plot(loo: TrialLOO, title: str = "") -> Figure:
    """Pareto k per trial of a leave-one-trial-out PSIS-LOO, with the 0.7 threshold.

    Parameters
    ----------
    loo : TrialLOO
        From :func:`rebayes.checks.loo.loo_by_trial`.
    title : str
        Second title line (e.g. the analysis and prior).

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = loo.table
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(table) + 1.8))
    colors = [BAD if high else POSTERIOR for high in table["high_k"]]
    ax.scatter(table["pareto_k"], y, color=colors, zorder=3)
    ax.axvline(loo.pareto_k_max, color=BAD, ls="--", lw=1)
    ax.text(
        loo.pareto_k_max,
        1.0,
        f" k = {loo.pareto_k_max:g}",
        transform=ax.get_xaxis_transform(),
        va="bottom",
        color=BAD,
        fontsize=8,
    )
    ax.set_yticks(y, [str(t) for t in table.index], fontsize=9)
    ax.set_xlabel("Pareto k (leave this trial out; above the line the estimate is unreliable)")
    ax.grid(axis="x", alpha=0.3)
    heading = f"PSIS-LOO by trial: elpd {loo.elpd:.1f} (SE {loo.se:.1f})"
    fig.suptitle(heading + (f"\n{title}" if title else ""), fontsize=10)
    fig.tight_layout()
    return fig
