"""Sensitivity: does the effect depend on the placebo (albumin, saline, multivitamin)?

One pooled effect per placebo type with a common heterogeneity (tau), as a subgroup analysis.
"""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="placebo",
    title="Effect by placebo type (sensitivity)",
    split_by_stratum=False,
    effect="separate",
    subgroup="placebo",
)

if __name__ == "__main__":
    rb.run_script(SPEC)
