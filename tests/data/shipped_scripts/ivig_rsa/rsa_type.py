"""Does the effect differ between primary and secondary RSA? Meta-regression on RSA type.

Each trial's primary and secondary strata are separate rows sharing the trial's random effect.
Trials that report no split (mixed strata) are left out of the contrast; run with
``mixed="share"`` to enter Christiansen 1995 with its known 76% share of secondary RSA.
"""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="rsa_type",
    title="Primary vs secondary RSA (meta-regression)",
    split_by_stratum=True,
    strata=("primary", "secondary", "mixed"),
    covariates=("rsa_type",),
    mixed="exclude",
    effect="contrast",
    subgroup="rsa_type",
)

if __name__ == "__main__":
    rb.run_script(SPEC)
