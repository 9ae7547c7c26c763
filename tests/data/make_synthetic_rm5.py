"""Write ``synthetic_subgroups.rm5``: a small RevMan 5 file with subgroups, "IV, Random" RR.

The stored results are computed here independently of rebayes: per-study log RR and variance
written out by hand (0.5 added to every cell of a study with a zero cell, as RevMan does),
DerSimonian-Laird pooling by statsmodels' ``combine_effects`` (``method_re="chi2"``), and the
test for subgroup differences (Q between the subgroup estimates, weights 1/SE^2) in numpy.
Run ``python tests/data/make_synthetic_rm5.py`` to regenerate the file.

Layout: subgroup 1 "Adults" (3 studies), 2 "Children" (2 studies, one with a zero cell; the
trial "Smith 2001" appears in both), 3 "Neonates" (one 0/14 vs 0/19 trial: not estimable).
"""

from pathlib import Path

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

STUDIES = {  # id: (name, year)
    "STD-Abel": ("Abel 1995", "1995"),
    "STD-Berg": ("Berg 1999", "1999"),
    "STD-Smith": ("Smith 2001", "2001"),
    "STD-Diaz": ("Diaz 2004", "2004"),
    "STD-Ono": ("Ono 2010", "2010"),
}
SUBGROUPS = {
    "Adults": [("STD-Abel", 12, 50, 20, 50), ("STD-Berg", 8, 40, 15, 42),
               ("STD-Smith", 30, 100, 28, 98)],
    "Children": [("STD-Smith", 5, 30, 11, 31), ("STD-Diaz", 0, 20, 4, 21)],
    "Neonates": [("STD-Ono", 0, 14, 0, 19)],
}


def log_rr(a, n1, c, n2):
    if a == 0 and c == 0:
        return None
    if 0 in (a, n1 - a, c, n2 - c):
        a, c, n1, n2 = a + 0.5, c + 0.5, n1 + 1, n2 + 1
    return np.log((a / n1) / (c / n2)), 1 / a - 1 / n1 + 1 / c - 1 / n2


def pooled(rows):
    effects = [log_rr(*r[1:]) for r in rows]
    effects = [e for e in effects if e is not None]
    counts = np.sum([r[1:] for r in rows], axis=0)
    if not effects:
        return None, counts
    y, v = map(np.array, zip(*effects, strict=True))
    res = combine_effects(y, v, method_re="chi2", use_t=False)
    frame = res.summary_frame()
    # DerSimonian-Laird truncates tau^2 at 0; statsmodels reports the raw moment estimate,
    # and with tau^2 < 0 the random-effects estimate is the fixed-effect one.
    row = "random effect" if res.tau2 > 0 else "fixed effect"
    est, se = frame.loc[row, "eff"], frame.loc[row, "sd_eff"]
    k = len(y)
    out = dict(
        EFFECT_SIZE=np.exp(est), CI_START=np.exp(est - 1.959964 * se),
        CI_END=np.exp(est + 1.959964 * se), Z=abs(est / se), P_Z=2 * stats.norm.sf(abs(est / se)),
        CHI2=res.q, DF=k - 1, P_CHI2=stats.chi2.sf(res.q, k - 1) if k > 1 else 1.0,
        I2=100 * max(0.0, (res.q - (k - 1)) / res.q) if k > 1 else 0.0,
        TAU2=max(0.0, res.tau2),
        ESTIMABLE="YES",
    )
    return (est, se, out), counts


def attrs(values, counts):
    base = dict(EVENTS_1=counts[0], TOTAL_1=counts[1], EVENTS_2=counts[2], TOTAL_2=counts[3])
    if values is None:
        base.update(ESTIMABLE="NO", EFFECT_SIZE=0.0, CI_START=0.0, CI_END=0.0, Z=0.0, P_Z=1.0,
                    CHI2=0.0, DF=0, P_CHI2=1.0, I2=0.0, TAU2=0.0)
    else:
        base.update(values[2])
    return " ".join(f'{k}="{v}"' for k, v in sorted(base.items()))


def main():
    all_rows = [r for rows in SUBGROUPS.values() for r in rows]
    total, total_counts = pooled(all_rows)
    subs = {name: pooled(rows) for name, rows in SUBGROUPS.items()}
    est = np.array([s[0][0] for s in subs.values() if s[0] is not None])
    se = np.array([s[0][1] for s in subs.values() if s[0] is not None])
    w = 1 / se**2
    q = float((w * (est - (w * est).sum() / w.sum()) ** 2).sum())
    df = len(est) - 1
    test = dict(Q=q, P_Q=stats.chi2.sf(q, df), I2_Q=100 * max(0.0, (q - df) / q))
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
           '<COCHRANE_REVIEW DOI="10.0000/synthetic.rm5" REVMAN_SUB_VERSION="5.3.5" '
           'REVMAN_VERSION="5" TYPE="INTERVENTION">',
           "<COVER_SHEET><TITLE>Synthetic review for rebayes tests</TITLE></COVER_SHEET>",
           "<STUDIES_AND_REFERENCES><STUDIES><INCLUDED_STUDIES>"]
    out += [f'<STUDY ID="{i}" NAME="{n}" YEAR="{y}"/>' for i, (n, y) in STUDIES.items()]
    out += ["</INCLUDED_STUDIES></STUDIES></STUDIES_AND_REFERENCES>",
            '<ANALYSES_AND_DATA CALCULATED_DATA="YES">',
            '<COMPARISON ID="CMP-001" NO="1"><NAME>Drug versus placebo</NAME>',
            '<DICH_OUTCOME CI_STUDY="95" CI_TOTAL="95" EFFECT_MEASURE="RR" ID="CMP-001.01" '
            'METHOD="IV" NO="1" RANDOM="YES" SUBGROUPS="YES" SUBGROUP_TEST="YES" '
            'SWAP_EVENTS="NO" TOTALS="YES" '
            + " ".join(f'{k}="{v}"' for k, v in test.items()) + " "
            + attrs(total, total_counts) + ">",
            "<NAME>Relapse</NAME>",
            "<GROUP_LABEL_1>Drug</GROUP_LABEL_1><GROUP_LABEL_2>Placebo</GROUP_LABEL_2>",
            "<GRAPH_LABEL_1>Favours drug</GRAPH_LABEL_1>"
            "<GRAPH_LABEL_2>Favours placebo</GRAPH_LABEL_2>"]
    for j, (name, (values, counts)) in enumerate(subs.items(), start=1):
        out.append(f'<DICH_SUBGROUP ID="CMP-001.01.0{j}" NO="{j}" {attrs(values, counts)}>'
                   f"<NAME>{name}</NAME>")
        for sid, a, n1, c, n2 in SUBGROUPS[name]:
            out.append(f'<DICH_DATA EVENTS_1="{a}" EVENTS_2="{c}" STUDY_ID="{sid}" '
                       f'TOTAL_1="{n1}" TOTAL_2="{n2}"/>')
        out.append("</DICH_SUBGROUP>")
    out += ["</DICH_OUTCOME>",
            '<IV_OUTCOME ID="CMP-001.02" NO="2"><NAME>Hazard of relapse</NAME></IV_OUTCOME>',
            "</COMPARISON></ANALYSES_AND_DATA></COCHRANE_REVIEW>"]
    Path(__file__).with_name("synthetic_subgroups.rm5").write_text(
        "\n".join(out) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
