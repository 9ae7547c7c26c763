"""The NUTS run: nutpie on a compiled model, longer until the draws are good enough.

:func:`run_nuts` samples a compiled model (:func:`rebayes.bayes.compilation.compiled_model`)
with nutpie under :class:`~rebayes.bayes.settings.SamplerSettings`: a run that diverged is
re-run at :data:`~rebayes.bayes.settings.DIVERGENCE_TARGET_ACCEPT`, and draws are doubled
while a parameter's bulk ESS misses the target or a transition diverged. Seeded: the same
seed gives the same draws, whatever the number of threads, and the rule depends only on the
draws. The sampler is waited for here, so that Ctrl-C cancels it (:mod:`rebayes.interrupt`),
and its trace is read straight from Arrow into the draws after tuning and the statistics a
fit keeps (:data:`~rebayes.bayes.settings.SAMPLE_STATS`); the fit's DataTree is made from
that by :func:`rebayes.bayes.trees.assemble_tree`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from rebayes import interrupt
from rebayes.bayes.settings import DIVERGENCE_TARGET_ACCEPT, SAMPLE_STATS, SamplerSettings

__all__ = ["run_nuts", "trace_to_tree", "wait_for_sampler"]


def run_nuts(
    compiled: Any,
    settings: SamplerSettings,
    seed: int,
    on_progress: Callable[[int], None] | None,
    cores: int | None = None,
) -> xr.DataTree:
    """Run nutpie, longer if the first run misses the ESS target or diverges.

    Parameters
    ----------
    compiled : nutpie.compile_pymc.CompiledPyMCModel
        The model with this fit's data and prior (:func:`rebayes.bayes.compilation.compiled_model`).
    settings : SamplerSettings
    seed : int
    on_progress : callable or None
        Called from a background thread with the number of draws done (all chains).
    cores : int, optional
        Threads the chains are sampled on (default: one per core, up to one per chain).

    Returns
    -------
    xarray.DataTree
        ``posterior`` and ``sample_stats`` of the last run, padded as the compiled model is;
        its attrs record the attempt, target acceptance and draws per chain.
    """
    import nutpie

    callback = None
    if on_progress is not None:

        def callback(chains: Sequence[Any]) -> None:
            on_progress(int(sum(c.finished_draws for c in chains)))

    target_accept, draws, attempt = settings.target_accept, settings.draws, 0
    while True:
        attempt += 1
        interrupt.check()
        sampler = nutpie.sample(
            compiled,
            draws=draws,
            tune=settings.tune,
            chains=settings.chains,
            seed=seed,
            target_accept=target_accept,
            progress_bar=False,
            save_warmup=False,
            progress_callback=callback,
            progress_rate=50,
            return_raw_trace=True,
            cores=cores,
            blocking=False,
        )
        raw = trace_to_tree(wait_for_sampler(sampler), compiled)
        divergences = int(raw["sample_stats"]["diverging"].sum())
        ess_min = _min_bulk_ess(raw["posterior"].to_dataset())
        raw.attrs.update(attempt=attempt, target_accept=target_accept, draws=draws)
        if ess_min >= settings.min_ess and divergences == 0:
            return raw
        if divergences and target_accept < DIVERGENCE_TARGET_ACCEPT:
            # Divergences call for smaller steps before more draws: same draws, re-run.
            target_accept = DIVERGENCE_TARGET_ACCEPT
            continue
        if not settings.min_ess or draws * 2 > settings.max_draws:
            return raw
        draws *= 2


# How often a sampling thread looks whether it should stop (rebayes.interrupt).
_STOP_POLL_SECONDS = 0.25


def wait_for_sampler(sampler: Any) -> Any:
    """Return the trace of nutpie's background sampler once it has finished.

    Waited for here, not in nutpie: nutpie's own wait answers Ctrl-C by returning the draws
    made so far, which would be taken for a whole fit (chains of unequal length, or a short
    fit cached under the full fit's key). On Ctrl-C, or when the process or this thread's job
    is asked to stop (:func:`rebayes.interrupt.check`), the sampler is cancelled (its threads
    end within milliseconds: ~20 ms measured, long before the process can) and nothing is
    kept.
    """
    try:
        while True:
            interrupt.check()
            try:
                return sampler.wait(timeout=_STOP_POLL_SECONDS)
            except TimeoutError:
                continue
    except BaseException:
        sampler.cancel()
        raise


def _min_bulk_ess(posterior: xr.Dataset) -> float:
    """Return the smallest bulk ESS over every scalar of ``posterior`` (NaN ones skipped)."""
    from rebayes.checks.batched import draws_array, ess_bulk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every one NaN: NaN, as before
        return float(np.nanmin(ess_bulk(draws_array(posterior))))


def trace_to_tree(trace: Any, compiled: Any) -> xr.DataTree:
    """Nutpie's raw (Arrow) trace as a tree of the draws after tuning and :data:`SAMPLE_STATS`.

    The posterior holds the ``compiled`` model's variables with their dims and coordinates,
    without the unconstrained values of its transformed ones (``tau_log__``), as nutpie's own
    conversion does; ``chain`` and ``draw`` are numbered from 0.

    nutpie's own conversion builds every one of its ~30 statistics as xarray objects (~70 ms a
    fit, measured: as long as sampling a small model); this takes the columns a fit keeps.
    Each value column holds one row per draw, tuning included; a vector variable's column is
    a list with the variable's shape in the field's metadata.
    """
    import nutpie
    import pyarrow as pa

    draw_batches, stat_batches = trace.get_arrow_trace()
    posterior: dict[str, list[np.ndarray]] = {}
    stats: dict[str, list[np.ndarray]] = {name: [] for name in SAMPLE_STATS}
    for draws, stat in zip(draw_batches, stat_batches, strict=True):
        kept = ~pa.array(stat.column("tuning")).to_numpy(zero_copy_only=False)
        for name in draws.column_names:
            if name in compiled.reparameterized_names:
                continue
            field = draws.schema.field(name)
            shape = field.metadata.get(b"shape", b"")
            shape = tuple(int(n) for n in shape.decode().split(",")) if shape else ()
            column = pa.array(draws.column(name))
            if shape:
                column = column.flatten()
            values = column.to_numpy(zero_copy_only=False).reshape(-1, *shape)
            posterior.setdefault(name, []).append(values[kept])
        for name in SAMPLE_STATS:
            column = pa.array(stat.column(name)).to_numpy(zero_copy_only=False)
            stats[name].append(column[kept])
    sample = ("chain", "draw")
    kept_draws = xr.Dataset({
        name: ((*sample, *compiled.dims.get(name, ())), np.stack(chains))
        for name, chains in posterior.items()
    })
    index = {dim: np.arange(size) for dim, size in kept_draws.sizes.items()}
    return xr.DataTree.from_dict({
        "posterior": kept_draws.assign_coords({**index, **{
            dim: np.asarray(values) for dim, values in compiled.coords.items()
            if dim in kept_draws.dims
        }}),
        "sample_stats": xr.Dataset({
            name: (sample, np.stack(chains)) for name, chains in stats.items()
        }, coords={dim: index[dim] for dim in sample},
            attrs={"inference_library": "nutpie", "inference_library_version": nutpie.__version__}),
    })
