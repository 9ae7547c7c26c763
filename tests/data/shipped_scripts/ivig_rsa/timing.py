"""Does the timing of IVIG matter? Pre-conception vs post-conception start (meta-regression)."""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="timing",
    title="IVIG started before vs after conception (meta-regression)",
    split_by_stratum=False,
    covariates=("timing",),
    effect="contrast",
    subgroup="timing",
)

if __name__ == "__main__":
    rb.run_script(SPEC)
