"""All seven placebo-controlled trials, strata summed: the review's whole population."""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="overall",
    title="All seven placebo-controlled trials (IVIG vs placebo)",
)

if __name__ == "__main__":
    rb.run_script(SPEC)
