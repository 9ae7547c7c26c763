"""Empirical prior distributions from the Cochrane Database of Systematic Reviews (data only).

Two published sets, kept here as numbers so that :mod:`rebayes.bayes.priors` builds named
prior sets from them and the model-averaged bias analysis (:mod:`rebayes.bayes.robust`) uses
them; this module imports nothing from rebayes.

**Bartoš et al. (2023)**: for each Cochrane review group ("medical subfield") and the whole
database, the effect mu ~ Student-t(location 0, scale, df) and the heterogeneity tau (the
between-study standard deviation, not its square) ~ InvGamma(shape, scale), fitted to
binary-outcome meta-analyses, on the log odds ratio and on the log risk ratio scale
(:data:`BARTOS_2023`). The numbers are those of BayesTools 0.3.0's ``prior_informed(name,
parameter, type = "logOR" | "logRR")`` (R/priors-informed.R, Bartoš' own package, which
RoBMA's ``BiBMA`` and ``BMA.glmm`` use), checked against the values the paper quotes for the
whole database: log OR t(0, 0.58, 4 df) and InvGamma(1.77, 0.55); log RR t(0, 0.32, 3 df) and
InvGamma(1.51, 0.23). "Childhood Cancer" has no heterogeneity prior (too few meta-analyses);
"Inflammatory Bowel Disease", "Public Health" and "Upper GI and Pancreatic Diseases" have no
binary-outcome priors.

**van Zwet, Schwab & Senn (2021)**: the signal-to-noise ratio SNR = beta / s of 23,551
randomised trials' primary outcomes in the Cochrane database is a mixture of four zero-mean
normals with weights 0.32, 0.31, 0.30, 0.07 and standard deviations 0.61, 1.42, 2.16, 5.64
(their Table 1; the z values' mixture has the same weights and SDs sqrt(sd^2 + 1) = 1.17,
1.74, 2.38, 5.73) (:data:`VAN_ZWET_2021`). A prior for a trial's effect beta is the mixture
scaled by that trial's standard error s. The Table 1 values were read from code that quotes
the paper (the paper itself was not at hand); their internal consistency (z SDs^2 = SNR SDs^2
+ 1) is checked in ``tests/test_empirical_priors.py``.

References
----------
Bartoš F, Otte WM, Gronau QF, Timmers B, Ly A, Wagenmakers E-J. Empirical prior
distributions for Bayesian meta-analyses of binary and time-to-event outcomes. Res Synth
Methods 2023 (arXiv:2306.11468). BayesTools (R package) 0.3.0, ``prior_informed``.
van Zwet E, Schwab S, Senn S. The statistical properties of RCTs and a proposal for
shrinkage. Stat Med 2021;40:6107-17. doi:10.1002/sim.9173.
"""

from __future__ import annotations

import re
from types import MappingProxyType

__all__ = [
    "BARTOS_2023",
    "BARTOS_SCALES",
    "VAN_ZWET_2021",
    "bartos_parameters",
    "subfield_slug",
]

#: The effect scales Bartoš et al. give priors for (binary outcomes), in the table's order.
BARTOS_SCALES: tuple[str, ...] = ("log OR", "log RR")

# Per subfield: (log OR effect (t scale, df), log OR tau (InvGamma shape, scale),
#                log RR effect (t scale, df), log RR tau (InvGamma shape, scale)).
# Every effect prior is centred on 0. None: no heterogeneity prior published.
_TABLE: dict[str, tuple[tuple[float, float], tuple[float, float] | None,
                        tuple[float, float], tuple[float, float] | None]] = {
    "Acute Respiratory Infections": ((0.48, 3), (1.67, 0.45), (0.27, 3), (1.58, 0.25)),
    "Airways": ((0.37, 2), (1.35, 0.27), (0.25, 3), (1.36, 0.15)),
    "Anaesthesia": ((0.79, 6), (2.12, 0.86), (0.45, 5), (1.21, 0.21)),
    "Back and Neck": ((0.62, 4), (1.84, 0.68), (0.34, 3), (1.52, 0.22)),
    "Bone, Joint and Muscle Trauma": ((0.44, 2), (1.01, 0.36), (0.26, 2), (0.97, 0.14)),
    "Breast Cancer": ((0.39, 3), (1.59, 0.48), (0.21, 3), (1.49, 0.24)),
    "Childhood Cancer": ((0.47, 4), None, (0.28, 3), None),
    "Colorectal": ((0.65, 4), (1.71, 0.60), (0.38, 4), (1.42, 0.27)),
    "Common Mental Disorders": ((0.54, 4), (1.63, 0.45), (0.29, 3), (1.43, 0.20)),
    "Consumers and Communication": ((0.48, 4), (2.37, 0.86), (0.13, 2), (1.48, 0.14)),
    "Cystic Fibrosis and Genetic Disorders": ((0.40, 3), (1.82, 0.58), (0.21, 2), (1.71, 0.24)),
    "Dementia and Cognitive Improvement": ((0.49, 4), (1.28, 0.25), (0.29, 3), (1.53, 0.19)),
        "Developmental, Psychosocial and Learning Problems":
        ((0.83, 5), (1.83, 0.82), (0.39, 3), (0.97, 0.11)),
    "Drugs and Alcohol": ((0.44, 4), (1.59, 0.42), (0.22, 4), (1.58, 0.20)),
        "Effective Practice and Organisation of Care":
        ((0.51, 4), (1.90, 0.68), (0.30, 4), (1.40, 0.24)),
    "Emergency and Critical Care": ((0.35, 3), (1.46, 0.34), (0.19, 2), (1.65, 0.25)),
    "ENT": ((0.81, 4), (1.73, 0.71), (0.40, 4), (1.50, 0.24)),
    "Epilepsy": ((0.88, 6), (1.71, 0.43), (0.58, 5), (1.74, 0.27)),
    "Eyes and Vision": ((0.77, 5), (2.09, 0.94), (0.34, 4), (1.60, 0.26)),
    "Fertility Regulation": ((0.46, 5), (2.21, 0.71), (0.34, 4), (1.59, 0.31)),
    "Gut": ((0.63, 5), (1.94, 0.62), (0.40, 4), (1.69, 0.29)),
        "Gynaecological, Neuro-oncology and Orphan Cancer":
        ((0.53, 4), (1.80, 0.56), (0.35, 4), (1.43, 0.25)),
    "Gynaecology and Fertility": ((0.40, 2), (1.24, 0.28), (0.25, 2), (1.29, 0.16)),
    "Haematology": ((0.57, 4), (2.91, 0.66), (0.31, 3), (1.22, 0.11)),
    "Heart": ((0.20, 2), (1.64, 0.29), (0.17, 3), (1.96, 0.24)),
    "Heart; Vascular": ((0.95, 4), (1.64, 0.83), (0.39, 3), (1.62, 0.25)),
    "Hepato-Biliary": ((0.43, 3), (1.58, 0.40), (0.23, 3), (1.44, 0.19)),
    "HIV/AIDS": ((0.32, 4), (1.76, 0.36), (0.21, 3), (1.66, 0.23)),
    "Hypertension": ((0.28, 5), (1.25, 0.10), (0.25, 4), (1.48, 0.11)),
    "Incontinence": ((0.75, 3), (2.07, 1.09), (0.39, 3), (1.53, 0.33)),
    "Infectious Diseases": ((0.66, 3), (2.08, 0.86), (0.41, 3), (1.30, 0.27)),
    "Injuries": ((0.60, 4), (1.52, 0.49), (0.27, 4), (1.46, 0.19)),
    "Kidney and Transplant": ((0.53, 4), (1.68, 0.44), (0.35, 4), (1.51, 0.23)),
    "Lung Cancer": ((0.61, 5), (2.04, 0.68), (0.38, 4), (1.49, 0.26)),
    "Metabolic and Endocrine Disorders": ((0.29, 2), (0.92, 0.11), (0.13, 1), (1.55, 0.19)),
    "Methodology": ((0.60, 5), (2.04, 0.50), (0.27, 5), (1.74, 0.23)),
    "Movement Disorders": ((0.73, 5), (2.14, 0.64), (0.46, 4), (1.54, 0.24)),
        "Multiple Sclerosis and Rare Diseases of the CNS":
        ((0.76, 4), (2.09, 0.71), (0.44, 3), (1.58, 0.35)),
    "Musculoskeletal": ((0.59, 4), (1.76, 0.59), (0.33, 3), (1.54, 0.31)),
    "Neonatal": ((0.29, 3), (1.80, 0.42), (0.18, 3), (1.89, 0.30)),
    "Neuromuscular": ((0.70, 5), (1.74, 0.49), (0.41, 4), (1.44, 0.15)),
    "Oral Health": ((1.13, 4), (1.85, 0.70), (0.55, 4), (1.50, 0.37)),
    "Pain, Palliative and Supportive Care": ((1.00, 7), (1.50, 0.40), (0.59, 5), (1.98, 0.39)),
    "Pregnancy and Childbirth": ((0.38, 2), (1.73, 0.47), (0.24, 2), (1.40, 0.21)),
    "Schizophrenia": ((0.58, 4), (1.92, 0.69), (0.33, 3), (1.47, 0.26)),
    "Sexually Transmitted Infections": ((0.61, 2), (1.72, 0.47), (0.39, 3), (1.43, 0.21)),
    "Skin": ((0.81, 2), (1.64, 0.49), (0.41, 1), (1.49, 0.23)),
    "Stroke": ((0.22, 2), (1.36, 0.21), (0.13, 2), (1.52, 0.15)),
    "Tobacco Addiction": ((0.49, 5), (2.51, 0.63), (0.36, 5), (2.02, 0.36)),
    "Urology": ((0.82, 5), (1.72, 0.50), (0.44, 3), (1.37, 0.18)),
    "Vascular": ((0.68, 5), (1.70, 0.45), (0.43, 5), (1.26, 0.19)),
    "Work": ((0.59, 4), (1.79, 0.73), (0.23, 3), (1.50, 0.26)),
    "Wounds": ((0.60, 4), (2.16, 0.86), (0.37, 4), (1.63, 0.38)),
    "Cochrane": ((0.58, 4), (1.77, 0.55), (0.32, 3), (1.51, 0.23)),
}

#: Bartoš et al. (2023) by subfield name (BayesTools' spelling): ``{scale: (t scale, t df,
#: InvGamma shape or None, InvGamma scale or None)}``.
BARTOS_2023 = MappingProxyType({
    name: MappingProxyType({
        "log OR": (*row[0], *(row[1] or (None, None))),
        "log RR": (*row[2], *(row[3] or (None, None))),
    })
    for name, row in _TABLE.items()
})

#: van Zwet, Schwab & Senn (2021), Table 1: mixture weights and SNR standard deviations.
VAN_ZWET_2021 = MappingProxyType({
    "weights": (0.32, 0.31, 0.30, 0.07),
    "snr_sd": (0.61, 1.42, 2.16, 5.64),
    "z_sd": (1.17, 1.74, 2.38, 5.73),
})


def subfield_slug(name: str) -> str:
    """Return the registry form of a subfield name: ``"Heart; Vascular"`` -> ``heart_vascular``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def bartos_parameters(subfield: str, scale: str) -> tuple[float, float, float | None,
                                                          float | None]:
    """Bartoš et al.'s (t scale, t df, InvGamma shape, InvGamma scale) for a subfield.

    Parameters
    ----------
    subfield : str
        A name of :data:`BARTOS_2023` or its :func:`subfield_slug` (``cochrane`` for the
        whole database).
    scale : {"log OR", "log RR"}

    Returns
    -------
    tuple
        The InvGamma entries are None where the paper gives no heterogeneity prior.

    Raises
    ------
    KeyError
        Unknown subfield or scale (the message lists what is known).
    """
    by_slug = {subfield_slug(name): name for name in BARTOS_2023}
    name = subfield if subfield in BARTOS_2023 else by_slug.get(subfield_slug(subfield))
    if name is None:
        raise KeyError(f"unknown Cochrane subfield {subfield!r} (known: "
                       f"{', '.join(sorted(by_slug))})")
    if scale not in BARTOS_SCALES:
        raise KeyError(f"Bartoš et al. give no priors on the {scale!r} scale "
                       f"(known: {', '.join(BARTOS_SCALES)})")
    return BARTOS_2023[name][scale]
