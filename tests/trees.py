"""Fit-shaped DataTrees holding known draws, for tests of the checks."""

import numpy as np
import xarray as xr

from rebayes.data.direction import Direction

CHAINS, DRAWS = 4, 1000
N = CHAINS * DRAWS


def fit_tree(seed=0, *, d_mean=0.2, d_sd=0.1, shift=0.0, diverging=(), energy=None, rows=3):
    """A fit-shaped tree (common-effect binomial model) holding iid draws."""
    rng = np.random.default_rng(seed)
    shape = (CHAINS, DRAWS)
    d = rng.normal(d_mean, d_sd, shape)
    d[0] += shift
    names = [f"r{i}" for i in range(rows)]
    posterior = xr.Dataset(
        {
            "d": (("chain", "draw"), d),
            "tau": (("chain", "draw"), np.abs(rng.normal(0, 0.2, shape))),
            "z": (("chain", "draw", "study"), rng.normal(size=(*shape, rows))),
            "alpha": (("chain", "draw", "row"), rng.normal(0.2, 0.3, (*shape, rows))),
        },
        coords={"chain": range(CHAINS), "draw": range(DRAWS), "study": names, "row": names},
    )
    row_coords = {"row": names, "row_study": ("row", names), "arm": ["control", "treat"]}
    constant = xr.Dataset(
        {"study_index": ("row", np.arange(rows)), "n": (("row", "arm"), np.full((rows, 2), 30))},
        coords={**row_coords, "study": names},
    )
    observed = xr.Dataset({"events": (("row", "arm"), np.full((rows, 2), 15))}, coords=row_coords)
    flags = np.zeros(shape, dtype=bool)
    for chain, draw in diverging:
        flags[chain, draw] = True
    stats_ds = xr.Dataset(
        {
            "diverging": (("chain", "draw"), flags),
            "energy": (("chain", "draw"), rng.normal(size=shape) if energy is None else energy),
        },
        coords={"chain": range(CHAINS), "draw": range(DRAWS)},
    )
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": stats_ds,
            "constant_data": constant,
            "observed_data": observed,
        }
    )
    # Declared higher-is-better: P(benefit) is P(RR > 1), the side these trees are built for.
    tree.attrs = {"analysis": "toy", "prior": "p", "variant": "v", "seed": seed,
                  **Direction(higher_is_better=True).attrs()}
    return tree
