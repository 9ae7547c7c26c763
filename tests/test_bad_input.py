"""The bad-input catalogue in README.md: every row's command gives exactly its message.

The README table is the specification; this test recreates each input file in an empty
directory, runs the command, and checks the one-line message, the exit status, and that
nothing was written (no new file, no cached fit).
"""

import re
import shlex

import pytest

from conftest import ROOT
from rebayes.cli import main

HEAD = "study,events_treat,n_treat,events_control,n_control"
FULL = "study,arm_group,timing,events_treat,n_treat,events_control,n_control"
GOOD_ROWS = "A,5,10,3,10\nB,4,9,2,8\n"
# dataset.toml of the folders below: strata, a trial-level covariate with two labels.
LABELLED = (
    'strata = "arm_group"\n'
    '[covariates.timing]\nlevels = ["pre", "post"]\nscope = "trial"\n'
)
# Dataset folders (name -> files), made when a command names the folder.
FOLDERS = {
    "bad_label": {"trials.csv": f"{FULL}\nA,a,during,5,10,3,10\n", "dataset.toml": LABELLED},
    "duplicate_stratum": {
        "trials.csv": f"{FULL}\nA,a,pre,5,10,3,10\nA,a,pre,4,9,2,8\n", "dataset.toml": LABELLED,
    },
    "mixed_timing": {
        "trials.csv": f"{FULL}\nA,a,pre,5,10,3,10\nA,b,post,4,9,2,8\n", "dataset.toml": LABELLED,
    },
    "undeclared": {"trials.csv": f"{HEAD}\n{GOOD_ROWS}", "dataset.toml": LABELLED},
    "bad_toml": {"trials.csv": f"{HEAD}\n{GOOD_ROWS}", "dataset.toml": 'measure = "HR"\n'},
    "peto_random": {"trials.csv": f"{HEAD}\n{GOOD_ROWS}",
                    "dataset.toml": 'measure = "PETO_OR"\nmodel = "random"\n'},
    "no_table": {},
}

FILES = {
    "unclosed_quote.csv": f'{HEAD}\n"A,5,10,3,10\n',
    "short_row.csv": f"{HEAD}\nA,5,10,3,10\nB,4,9,2\n",
    "no_n_control.csv": "study,events_treat,n_treat,events_control\nA,5,10,3\n",
    "text_count.csv": f"{HEAD}\nA,five,10,3,10\n",
    "events_over_n.csv": f"{HEAD}\nA,12,10,3,10\n",
    "negative.csv": f"{HEAD}\nA,5,10,3,10\nB,4,9,-1,8\n",
    "zero_n.csv": f"{HEAD}\nA,0,0,3,10\n",
    "huge.csv": f"{HEAD}\nA,1e29,1e29,3,10\n",
    "decimal.csv": f"{HEAD}\nA,12.5,20,3,10\n",
    "header_only.csv": f"{HEAD}\n",
    "empty.csv": "",
    "single_trial.csv": f"{HEAD}\nA,5,10,3,10\n",
    "single_trial.py": ("import rebayes as rb\n"
                        "SPEC = rb.AnalysisSpec('single_trial', data='single_trial.csv')\n"),
    "double_zero.csv": f"{HEAD}\nA,0,10,0,10\nB,0,9,0,8\n",
    "good.csv": f"{HEAD}\n{GOOD_ROWS}",
    "good.py": "import rebayes as rb\nSPEC = rb.AnalysisSpec('good', data='good.csv')\n",
    "negative_scale.toml": '[bad]\ntau = { family = "half_normal", sigma = -1 }\n',
    "gamma.toml": '[bad]\ntau = { family = "gamma", sigma = 1 }\n',
    "no_spec.py": "x = 1\n",
}


def catalogue():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 3 and cells[1].startswith("`rebayes"):
            rows.append((cells[0], cells[1].strip("`"), cells[2].strip("`")))
    return rows


ROWS = catalogue()


def test_the_catalogue_is_complete():
    kinds = {row[0] for row in ROWS}
    assert len(ROWS) >= 15
    for required in ("malformed CSV", "missing column", "text in a count", "events > total",
                     "negative count", "zero n", "unknown label", "count too large",
                     "duplicate study", "inconsistent trial", "empty table", "single trial",
                     "double-zero", "unknown prior name", "negative prior scale",
                     "unknown model script", "unknown variant", "unwritable output",
                     "no dataset", "folder without", "invalid dataset.toml"):
        assert any(required in kind for kind in kinds), required


@pytest.mark.parametrize(("kind", "command", "message"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_row(kind, command, message, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    cache = tmp_path / "cache"
    monkeypatch.setenv("REBAYES_CACHE", str(cache))
    monkeypatch.chdir(work)
    for word in shlex.split(command):
        if word in FOLDERS:
            (work / word).mkdir()
            for name, text in FOLDERS[word].items():
                (work / word / name).write_text(text, encoding="utf-8")
    for name in set(re.findall(r"[\w.]+\.(?:csv|py|toml)", command)):
        if name in FILES:
            (work / name).write_text(FILES[name], encoding="utf-8")
        if name == "single_trial.py":
            (work / "single_trial.csv").write_text(FILES["single_trial.csv"], encoding="utf-8")
        if name == "good.py":
            (work / "good.csv").write_text(FILES["good.csv"], encoding="utf-8")
    before = sorted(str(p.relative_to(work)) for p in work.rglob("*"))
    code = main(shlex.split(command)[1:])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1
    prefix = f"rebayes {shlex.split(command)[1]}: error: "
    assert err.startswith(prefix)
    got = err[len(prefix):].rstrip("\n")
    if "…" in message:
        head = message.split("…")[0]
        assert got.startswith(head), got
    else:
        assert got == message
    assert sorted(str(p.relative_to(work)) for p in work.rglob("*")) == before  # nothing new
    assert not cache.exists() or not any(cache.rglob("*.nc"))  # and no fit cached
