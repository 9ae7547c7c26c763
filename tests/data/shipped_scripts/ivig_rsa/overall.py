"""Overall effect of IVIG on live birth: all ten trials, strata summed (as RevMan pools them)."""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="overall",
    title="IVIG vs placebo, live birth, all trials",
    split_by_stratum=False,
    effect="common",
)

if __name__ == "__main__":
    rb.run_script(SPEC)
