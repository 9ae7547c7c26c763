"""The bad-input catalogue in docs/bad-input.md: every row's command gives exactly its message.

The catalogue's table is the specification; this test recreates each input file in an empty
directory, runs the command, and checks the one-line message, the exit status, and that
nothing was written (no new file, no cached fit). ``$PWD`` in a message stands for that
directory.
"""

import json
import os
import re
import shlex
from pathlib import Path

import pytest

import revman_files
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
    # A report folder whose manifest lists a file behind a link to the folder beside it.
    "forged_report": {
        ".rebayes-report.json": json.dumps(
            {"format": "rebayes-report/1", "files": ["link/notes.txt"]}
        ),
        "link": Path("../outside"),
        "../outside/notes.txt": "the user's",
    },
    # A covariate whose name, as an analysis's, would name report files outside the report.
    "pathy_covariate": {
        "trials.csv": "study,events_treat,n_treat,events_control,n_control,../x\n"
                      "A,5,10,3,10,a\nB,4,9,2,8,b\n",
        "dataset.toml": '[covariates."../x"]\nlevels = ["a", "b"]\n',
    },
    # A previous import's folder to which the user added a file.
    "imported": {
        "1.1/.rebayes-import": "{}\n",
        "1.1/trials.csv": f"{HEAD}\n{GOOD_ROWS}",
        "1.1/notes.txt": "the user's",
    },
    "misspelt_key": {"trials.csv": f"{HEAD}\n{GOOD_ROWS}", "dataset.toml": 'measur = "OR"\n'},
    "misspelt_variant": {
        "trials.csv": f"{HEAD}\n{GOOD_ROWS}",
        "variants.toml": '[v]\n[[v.sett]]\nstudy = "A"\nn_treat = 11\n',
    },
    "misspelt_analysis": {
        "trials.csv": f"{HEAD}\n{GOOD_ROWS}",
        "dataset.toml": '[[analyses]]\nname = "a"\ncovarites = ["x"]\n',
    },
    "bad_analysis": {
        "trials.csv": f"{HEAD}\n{GOOD_ROWS}",
        "dataset.toml": '[[analyses]]\nname = "split"\neffect = "separate"\n',
    },
    "bidi_label": {
        "trials.csv": f"{HEAD}\n{GOOD_ROWS}", "dataset.toml": 'treatment = "drug \u202eA"\n',
    },
    # A downloaded folder whose script would write a file if it ran.
    "downloaded": {
        "trials.csv": f"{HEAD}\n{GOOD_ROWS}",
        "models/evil.py": "open('ran', 'w').write('ran')\n",
    },
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
    "dotdot_number.rm5": revman_files.one_outcome(c_no="../../x"),
    "absolute_number.rm5": revman_files.one_outcome(c_no="/tmp/x"),
    "slash_outcome.rm5": revman_files.one_outcome(o_no="1/2"),
    "duplicate_outcome.rm5": revman_files.review(
        (("1", (("1", revman_files.ROWS), ("1", revman_files.ROWS))),)
    ),
    "huge_count.rm5": revman_files.one_outcome(
        rows=(("S1", 12345678901234567, 12345678901234567, 5, 20), ("S2", 4, 30, 8, 31))
    ),
    "nameless_study.rm5": revman_files.one_outcome(
        rows=(("", 10, 20, 5, 20), ("S2", 4, 30, 8, 31))
    ),
    "good_review.rm5": revman_files.one_outcome(),
    "not_xml.rm5": "not a review\n",
    "not_a_zip.zip": "not a zip at all\n",
    "no_tables.zip": b"PK\x05\x06" + bytes(18),  # an empty zip archive
    "effect_sizes.csv": "study,yi,vi\nA,-0.89,0.33\nB,-1.59,0.19\n",
    "misspelt_prior.toml": '[p]\ntua = { family = "half_normal", sigma = 1 }\n',
    "semicolons.csv": "study;events_treat;n_treat;events_control;n_control\nA;5;10;3;10\n",
    "nul_name.csv": f"{HEAD}\nA\x00,5,10,3,10\nB,4,9,2,8\n",
    "bidi_name.csv": f"{HEAD}\nA,5,10,3,10\nB\u202e,4,9,2,8\n",
}


# Cache folders a command names through REBAYES_CACHE=NAME: (mode, owner's uid or None).
CACHES = {"open_cache": (0o777, None), "their_cache": (0o700, 12345)}


def catalogue():
    section = (ROOT / "docs" / "bad-input.md").read_text(encoding="utf-8")
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 3 and cells[1].startswith(("`rebayes", "`REBAYES_CACHE=")):
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
    if command.startswith("REBAYES_CACHE="):
        setting, command = command.split(" ", 1)
        name = setting.removeprefix("REBAYES_CACHE=")
        mode, owner = CACHES[name]
        if owner is not None and os.getuid() != 0:
            pytest.skip("a cache folder of another user needs root to make")
        (work / name).mkdir()
        (work / name).chmod(mode)
        if owner is not None:
            os.chown(work / name, owner, owner)
        cache = work / name
        monkeypatch.setenv("REBAYES_CACHE", name)
    for word in shlex.split(command):
        if word in FOLDERS:
            (work / word).mkdir()
            for name, content in FOLDERS[word].items():
                path = work / word / name
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Path):
                    path.symlink_to(content)
                else:
                    path.write_text(content, encoding="utf-8")
    for name in set(re.findall(r"[\w.]+\.(?:csv|py|toml|rm5|zip)", command)):
        if name in FILES:
            content = FILES[name]
            if isinstance(content, bytes):
                (work / name).write_bytes(content)
            else:
                (work / name).write_text(content, encoding="utf-8")
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
    message = message.replace("$PWD", str(work.resolve()))
    if "…" in message:
        head = message.split("…")[0]
        assert got.startswith(head), got
    else:
        assert got == message
    assert sorted(str(p.relative_to(work)) for p in work.rglob("*")) == before  # nothing new
    assert not cache.exists() or not any(cache.rglob("*.nc"))  # and no fit cached
