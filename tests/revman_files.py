"""Small RevMan 5 files written as text, for tests of what a hostile or odd file can do.

``review()`` builds a ``.rm5`` (the layout ``tests/data/make_synthetic_rm5.py`` writes, without
stored results): comparisons with their ``NO`` attributes as given, each with dichotomous
outcomes holding ``DICH_DATA`` rows. Nothing is escaped on purpose: the attributes are the
probe.
"""

STUDIES = {"S1": "Lee 2003", "S2": "Kim 2005"}
ROWS = (("S1", 10, 20, 5, 20), ("S2", 4, 30, 8, 31))


def review(comparisons=(("1", (("1", ROWS),)),), studies=STUDIES):
    """Return the text of a ``.rm5`` file.

    ``comparisons`` is a sequence of ``(NO, outcomes)``; each outcome is ``(NO, rows)`` and
    each row ``(STUDY_ID, EVENTS_1, TOTAL_1, EVENTS_2, TOTAL_2)``. ``studies`` maps study IDs
    to names.
    """
    out = ["<COCHRANE_REVIEW><STUDIES_AND_REFERENCES><STUDIES><INCLUDED_STUDIES>"]
    out += [f'<STUDY ID="{i}" NAME="{name}" YEAR="2003"/>' for i, name in studies.items()]
    out.append("</INCLUDED_STUDIES></STUDIES></STUDIES_AND_REFERENCES><ANALYSES_AND_DATA>")
    for c_no, outcomes in comparisons:
        out.append(f'<COMPARISON NO="{c_no}"><NAME>Drug vs placebo</NAME>')
        for o_no, rows in outcomes:
            out.append(
                f'<DICH_OUTCOME NO="{o_no}" EFFECT_MEASURE="RR" METHOD="MH" RANDOM="NO" '
                'TOTALS="YES" SUBGROUPS="NO" CI_TOTAL="95"><NAME>Cure</NAME>'
            )
            out += [
                f'<DICH_DATA STUDY_ID="{sid}" EVENTS_1="{e1}" TOTAL_1="{n1}" EVENTS_2="{e2}" '
                f'TOTAL_2="{n2}"/>'
                for sid, e1, n1, e2, n2 in rows
            ]
            out.append("</DICH_OUTCOME>")
        out.append("</COMPARISON>")
    out.append("</ANALYSES_AND_DATA></COCHRANE_REVIEW>")
    return "\n".join(out) + "\n"


def one_outcome(c_no="1", o_no="1", rows=ROWS, studies=STUDIES):
    """A review with one comparison holding one dichotomous outcome."""
    return review(((c_no, ((o_no, rows),)),), studies)
