"""The normal-normal hierarchical model on each trial's log RR (bayesmeta's model).

For comparison with the exact binomial model and with RevMan: each trial's observed log RR
with its RevMan variance (0.5 added to every cell of a trial with a zero cell). The effect
prior applies on the log RR scale here.
"""

import rebayes as rb

SPEC = rb.AnalysisSpec(
    name="normal_approximation",
    title="Normal approximation on the log RR (bayesmeta's normal-normal model)",
    likelihood="normal",
    split_by_stratum=False,
    effect="common",
)

if __name__ == "__main__":
    rb.run_script(SPEC)
