"""The HTML and markdown report.

- :mod:`~rebayes.report.build`: :func:`~rebayes.report.build.build_report`, every page of a
  dataset's report;
- :mod:`~rebayes.report.analysis`: one analysis page;
- :mod:`~rebayes.report.sections`: sensitivity and diagnostics sections;
- :mod:`~rebayes.report.frequentist`: the RevMan tables page;
- :mod:`~rebayes.report.html`: the jinja2 environment, tables, figures and the page frame;
- ``templates/``: the pages, sections and macros (jinja2, autoescaped) and ``report.css``.
"""
