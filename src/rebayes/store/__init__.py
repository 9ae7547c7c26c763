"""Everything rebayes keeps on disk, and the one rule that keys it.

- :mod:`~rebayes.store.paths`: the cache folder and its folders, the checks that no other
  user could change them, checksummed entries, ``rebayes cache info`` and ``clear``;
- :mod:`~rebayes.store.keys`: :func:`~rebayes.store.keys.content_key`, the one key rule
  (inputs, library versions and the source of the modules that compute a result), and the
  one JSON normalisation (``plain``, ``dumps``, ``stable_hash``);
- :mod:`~rebayes.store.fits`: fit files (NetCDF), written in the background, read back
  checked;
- :mod:`~rebayes.store.derived`: what is computed from a fit (summaries, verdicts,
  sensitivity, the report's bias section), pickled beside it.

Nothing here imports :mod:`rebayes.bayes`; ``import rebayes.store`` imports nothing heavy
(:mod:`~rebayes.store.fits` loads xarray when imported).
"""
