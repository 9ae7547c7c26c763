"""The HTML and markdown report.

- :mod:`~rebayes.report.build.build`: :func:`build_report`, every page of a dataset's report;
- :mod:`~rebayes.report.build.analysis`: one analysis page;
- :mod:`~rebayes.report.build.sections`: sensitivity and diagnostics sections;
- :mod:`~rebayes.report.build.frequentist`: the RevMan tables page;
- :mod:`~rebayes.report.build.html`: tables, figures and the page frame.
"""
