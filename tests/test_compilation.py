"""The compile cache: a structure compiled in one process is loaded, not recompiled, in the next,
and a seed gives the same draws either way."""

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from conftest import ivig_spec
from rebayes.bayes.compilation import compile_key
from rebayes.bayes.design import build_design
from rebayes.store.paths import CacheNote

# Fits with 200 draws, writes the posterior draws of every variable to argv[1] (.npz) and
# prints whether PyMC was imported (it is not needed when the compilation is loaded).
FIT_SCRIPT = """
import sys
import numpy as np
import rebayes as rb
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.fit import fit

spec = rb.resolve_spec(sys.argv[2], "ivig_rsa")
result = fit(spec, "skeptical", cache=False, settings=SamplerSettings(draws=200, min_ess=0))
posterior = result.tree["posterior"]
np.savez(sys.argv[1], **{name: posterior[name].values for name in posterior.data_vars})
print("pymc" in sys.modules)
"""


def _fit_in_fresh_process(tmp_path, name: str, cache) -> tuple[dict[str, np.ndarray], bool]:
    out = tmp_path / f"{name}.npz"
    env = {**os.environ, "REBAYES_CACHE": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", FIT_SCRIPT, str(out), "overall"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=True,
    )
    with np.load(out) as draws:
        return dict(draws), result.stdout.strip().endswith("True")


@pytest.mark.slow
def test_same_seed_same_draws_with_a_cold_and_a_filled_compile_cache(tmp_path):
    cache = tmp_path / "cache"
    cold, cold_imported_pymc = _fit_in_fresh_process(tmp_path, "cold", cache)
    stored = list((cache / "compiled").glob("*.pkl"))
    assert len(stored) == 1
    warm, warm_imported_pymc = _fit_in_fresh_process(tmp_path, "warm", cache)
    assert cold.keys() == warm.keys()
    for name in cold:
        np.testing.assert_array_equal(cold[name], warm[name], err_msg=name)
    # The second process loaded the stored model: it never built the PyMC graph.
    assert cold_imported_pymc and not warm_imported_pymc
    assert list((cache / "compiled").glob("*.pkl")) == stored


def test_compile_key_follows_the_structure_not_the_data(monkeypatch):
    from rebayes.bayes import model

    overall = build_design(ivig_spec("overall"))
    key = compile_key(overall)
    # Same padded shape, other data or covariates: the same compiled code.
    fewer_events = replace(overall, events=overall.events // 2)
    assert compile_key(fewer_events) == key
    assert compile_key(build_design(ivig_spec("timing"))) == key
    # Another likelihood, or more rows than the padding holds: another key.
    normal = build_design(ivig_spec("normal_approximation"))
    assert compile_key(normal) != key
    capacity = model.structure_key(overall)
    monkeypatch.setattr(model, "structure_key", lambda d: replace(capacity, rows=32))
    assert compile_key(overall) != key


def test_compile_key_follows_library_versions(monkeypatch):
    from rebayes.store import keys

    design = build_design(ivig_spec("overall"))
    key = compile_key(design)
    real_versions = keys.library_versions

    def other_numba(names: tuple[str, ...]) -> dict[str, str]:
        assert "numba" in names
        return {**real_versions(names), "numba": "0.0.0"}

    monkeypatch.setattr(keys, "library_versions", other_numba)
    assert compile_key(design) != key


def test_an_unreadable_compiled_model_is_compiled_again(tmp_path, monkeypatch):
    from rebayes.bayes import compilation

    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path))
    design = build_design(ivig_spec("overall"))
    path = tmp_path / "compiled" / f"{compile_key(design)}.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    with pytest.warns(CacheNote, match="not a rebayes cache entry"):
        assert compilation.read_compiled(path) is None


def _logp_callback(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    """Call the stored C log-density callback as nutpie's sampler does."""
    import ctypes

    double_p = ctypes.POINTER(ctypes.c_double)
    signature = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, double_p, double_p, double_p,
                                 ctypes.c_void_p)
    callback = signature(compiled.compiled_logp_func.address)
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    logp = np.zeros(())
    status = callback(x.size, x.ctypes.data_as(double_p), grad.ctypes.data_as(double_p),
                      logp.ctypes.data_as(double_p), compiled.user_data.ctypes.data)
    return status, float(logp), grad


def test_the_stored_callback_reads_the_data_it_is_given():
    """The callback unpacks each data array from nutpie's record: its log density and gradient
    equal PyTensor's own function of the same graph on the same data, for two datasets."""
    from nutpie.compile_pymc import _make_functions

    from rebayes.bayes.compilation import compiled_model
    from rebayes.bayes.design import prior_on_model_scale
    from rebayes.bayes.model import build_model
    from rebayes.bayes.priors import get_prior

    overall = build_design(ivig_spec("overall"))
    halved = replace(overall, events=overall.events // 2)
    rng = np.random.default_rng(1)
    for design in (overall, halved):
        prior = prior_on_model_scale(get_prior("skeptical"), design)
        reference = _make_functions(build_model(design, prior), mode="NUMBA", compute_grad=True,
                                    join_expanded=True, pymc_initial_point_fn=lambda s: {})[2]
        compiled = compiled_model(design, prior)
        x = rng.uniform(-1, 1, compiled.n_dim)
        expected_logp, expected_grad = reference(x)
        status, logp, grad = _logp_callback(compiled, x)
        assert status == 0
        assert logp == pytest.approx(float(expected_logp), rel=1e-12)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)
    assert _logp_callback(compiled, np.full(compiled.n_dim, np.nan))[0] in (3, 4)


def test_data_of_another_shape_is_refused():
    from rebayes.bayes.compilation import compiled_model
    from rebayes.bayes.design import prior_on_model_scale
    from rebayes.bayes.model import model_data
    from rebayes.bayes.priors import get_prior

    design = build_design(ivig_spec("overall"))
    prior = prior_on_model_scale(get_prior("skeptical"), design)
    compiled = compiled_model(design, prior)
    shape = model_data(design, prior)["n_treat"].shape
    with pytest.raises(ValueError, match=r"n_treat has shape \(3,\)"):
        compiled.with_data(n_treat=np.ones(3, dtype=np.int32))
    refitted = compiled.with_data(n_treat=np.ones(shape, dtype=np.int32))
    assert refitted.shared_data["n_treat"].shape == shape


# Starts compiling the overall analysis's structure in a child process, fits, and prints
# whether this process imported PyMC and how many structures are stored.
AHEAD_SCRIPT = """
import sys
import rebayes as rb
from rebayes.store.paths import compiled_dir
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.fit import compile_in_background, fit

spec = rb.resolve_spec(sys.argv[1], "ivig_rsa")
compile_in_background([(spec, "published", None), (spec, "seed_fit", None)])  # one structure
result = fit(spec, "skeptical", cache=False, settings=SamplerSettings(draws=200, min_ess=0))
assert result.tree["posterior"]["tau"].shape == (4, 200)
print("pymc" in sys.modules, len(list(compiled_dir().glob("*.pkl"))))
"""


def test_a_report_compiles_in_a_child_process_and_never_imports_pymc(tmp_path):
    env = {**os.environ, "REBAYES_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", AHEAD_SCRIPT, "overall"],
        capture_output=True, text=True, timeout=900, env=env, check=True,
    )
    assert result.stdout.split() == ["False", "1"]


def test_waiting_for_the_child_ends_with_its_keys_or_its_exit():
    from rebayes.bayes.compilation import CompilerChild

    process = subprocess.Popen([sys.executable, "-c", "print('noise'); print('a'); print('b')"],
                               stdout=subprocess.PIPE)
    child = CompilerChild(["a", "b", "c"], process)
    child.wait_for("a")
    assert child.pending == {"b", "c"}
    # "c" never comes: the child's exit ends the wait, and what is left compiles in-process.
    child.wait_for("c")
    assert child.pending == set() and process.returncode == 0


# With every fit of the analysis in the fit cache, nothing is compiled and numba never loads.
CACHED_SCRIPT = """
import sys
import rebayes as rb
from rebayes.bayes import compilation
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.fit import compile_in_background, fit

spec = rb.resolve_spec(sys.argv[1], "ivig_rsa")
settings = SamplerSettings(draws=200, min_ess=0)
if sys.argv[2] == "fit":
    fit(spec, "skeptical", settings=settings)
else:
    compile_in_background([(spec, None, None)], ["skeptical"], settings)
    print(len(compilation._CHILDREN), "numba" in sys.modules)
"""


def test_nothing_compiles_ahead_for_analyses_whose_fits_are_cached(tmp_path):
    env = {**os.environ, "REBAYES_CACHE": str(tmp_path / "cache")}

    def run(mode: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", CACHED_SCRIPT, "overall", mode],
            capture_output=True, text=True, timeout=900, env=env, check=True,
        ).stdout.split()

    assert run("ahead") == ["1", "True"]  # nothing cached: a child compiles
    run("fit")
    assert run("ahead") == ["0", "False"]


SPARE_SCRIPT = """
import sys, time
from rebayes.bayes import compilation

compilation.start_compiler()
spare = list(compilation._SPARE)
compilation.compile_ahead([])  # nothing to compile: the spare child is told so and ends
start = time.monotonic()
codes = [p.wait(timeout=120) for p in spare]
print(len(spare), codes, "numba" in sys.modules)
"""


def test_a_spare_compiler_starts_only_with_an_empty_compile_cache_and_ends_without_jobs(
        tmp_path):
    env = {**os.environ, "REBAYES_CACHE": str(tmp_path / "cache")}

    def run() -> str:
        return subprocess.run([sys.executable, "-c", SPARE_SCRIPT], capture_output=True,
                              text=True, timeout=300, env=env, check=True).stdout.strip()

    assert run() == "1 [0] False"
    (tmp_path / "cache" / "compiled").mkdir(parents=True)
    (tmp_path / "cache" / "compiled" / "some-structure.pkl").write_bytes(b"")
    assert run() == "0 [] False"
