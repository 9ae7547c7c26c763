"""The review's question: does IVIG raise the odds of a live birth in secondary RM?

Only the secondary-RM strata of the seven trials enter (each a row of its trial); a common
effect with trial random effects, as the review pooled them.
"""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="secondary",
    title="Secondary recurrent miscarriage: IVIG vs placebo (the review's pooled OR)",
    split_by_stratum=True,
    strata=("secondary",),
)

if __name__ == "__main__":
    rb.run_script(SPEC)
