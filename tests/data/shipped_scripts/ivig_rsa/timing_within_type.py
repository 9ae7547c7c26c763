"""Timing within RSA type: is the timing contrast confounded by RSA type?

Pre-conception trials enrolled mostly secondary RSA. Rows are strata (mixed strata left out);
RSA type, timing and their interaction enter the design matrix. In the published table no
primary-RSA stratum got IVIG before conception, so the interaction is not identified and the
design leaves it out (see the notes printed with the fit); the timing coefficient is then the
timing contrast within secondary RSA. The seed_fit variant adds that cell.
"""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="timing_within_type",
    title="Timing of IVIG within RSA type (type x timing meta-regression)",
    split_by_stratum=True,
    strata=("primary", "secondary"),
    covariates=("rsa_type", "timing", "rsa_type:timing"),
    effect="contrast",
    subgroup=("rsa_type", "timing"),
)

if __name__ == "__main__":
    rb.run_script(SPEC)
