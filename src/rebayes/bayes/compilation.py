"""Compiled models on disk: a structure compiled once on a machine serves every later process.

nutpie turns a PyMC model into two C callbacks (the log density with its gradient, and the
expansion of a draw into every recorded variable), which numba compiles from PyTensor's
graph. nutpie does this in every process (10-50 s: numba's type inference, lowering and
LLVM optimisation of a few hundred small functions); its numba ``cache=True`` never hits,
because the callbacks close over data with random names (``uuid4`` keys) and numba's cache
key hashes the closure.

The callbacks numba compiles here are rebayes' own (``_LOGP_SOURCE``, ``_EXPAND_SOURCE``):
thin C wrappers around PyTensor's compiled graph, with the data's shapes compiled in. With
PyTensor's per-operation cache warm, a new structure compiles in ~3 s (measured 2.8 s; with
nutpie's wrappers and the earlier graph: ~12 s), ~8 s on a machine with that cache empty.

Here the compiled callbacks are stored with numba's own serialisation (the object code and
function descriptor a ``CompileResult`` reduces to, what numba's on-disk cache stores) under
``<cache>/compiled/<key>.pkl`` (:func:`rebayes.store.paths.compiled_dir`), next to what
nutpie needs around them: the sizes and names of the parameter vector, the layout of the
``pm.Data`` record the callbacks read. A later process loads that in ~0.5 s and builds
nutpie's ``CompiledPyMCModel`` without PyTensor compiling anything.

Within a process, :func:`compiled_model` keeps one compiled model per
:func:`~rebayes.bayes.model.structure_key`: a further prior or data variant of the same
shape only swaps ``pm.Data`` values (``with_data``), which takes microseconds instead of
loading (~0.5 s) or compiling.

- The key (:func:`compile_key`, under the one key rule
  :func:`rebayes.store.keys.content_key`, kind ``"compiled"``) hashes the padded structure
  (:func:`rebayes.bayes.model.structure_key`), the source of the modules that build the
  graph and its callbacks (this one, :mod:`rebayes.bayes.model` and what they import), the
  versions of every library in the chain (nutpie, PyMC, PyTensor, numba, llvmlite, NumPy,
  Python) and numba's target (CPU name and features, optimisation level; fastmath is always
  off): a change to any of them compiles afresh rather than load code built for something
  else.
- Reproducible by construction: a cold process also samples with the code it stored, loaded
  back from the bytes it wrote, so a seed gives the same draws whether the compilation is
  fresh or read from disk. The initial point does not depend on the data either
  (:func:`_initial_point`): 0 on the unconstrained scale plus U(-1, 1) jitter from the seed.
- Safe under concurrency: a process compiling a structure holds an advisory lock on
  ``<key>.lock``; another one asking for it meanwhile waits and then loads the result instead
  of compiling again. The file is written to a temporary name and renamed into place, so a
  reader sees a complete file or none; an unreadable one is compiled again.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import platform
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rebayes import interrupt
from rebayes.bayes.design import Design
from rebayes.progress import phase
from rebayes.store.keys import content_key
from rebayes.store.paths import (
    compiled_dir,
    make_folder,
    note_unreadable,
    read_entry,
    warn_unwritable,
    write_entry,
)

__all__ = [
    "compile_ahead",
    "compile_key",
    "compiled_model",
    "is_compiled",
    "CompilerChild",
    "load_or_compile",
    "read_compiled",
    "spawn_compiler",
    "start_compiler",
]


def _reproducible_numba() -> None:
    """Compile the model without numba's fastmath, so a seed gives the same draws everywhere.

    With fastmath (PyTensor's default), LLVM may order floating-point operations differently
    in a freshly JIT-compiled function than in the same function loaded from numba's on-disk
    cache; the tiny differences grow along HMC trajectories, so a first (cold) run and a
    later (cached) run with the same seed gave different posteriors (measured: posterior sums
    1062.91 vs 1059.61 on a toy model). Without fastmath both agree, at the same speed once
    the cache is warm.
    """
    import pytensor

    pytensor.config.numba__fastmath = False


def _target() -> list[Any]:
    """Return numba's code-generation target (triple, CPU name and features) and optimisation level.

    Fastmath is always off (:func:`_compile` sets it), so it needs no entry; reading it here
    would import PyTensor in processes that only load.
    """
    import numba
    from numba.core.registry import cpu_target

    return [list(cpu_target.target_context.codegen().magic_tuple()),
            numba.config.OPT]  # type: ignore[attr-defined]  # set at import by numba.config


def compile_key(design: Design) -> str:
    """Hash of everything that changes the compiled code of a design's structure.

    Two designs with the same :func:`~rebayes.bayes.model.structure_key` share a key; any
    change of structure, of the model's source, of a library version, of the CPU target or of
    the fastmath setting gives another one.
    """
    from rebayes.bayes.model import structure_key

    payload = {
        "structure": asdict(structure_key(design)),
        "python": sys.version,
        "machine": platform.machine(),
        "target": _target(),
    }
    return content_key("compiled", payload)


@dataclass(frozen=True)
class _SharedName:
    """A PyTensor shared variable's stand-in for nutpie's ``with_data``.

    ``with_data`` reads ``.name`` only, so a loaded model carries no PyTensor graph.
    """

    name: str


class _LoadedCallback:
    """A compiled C callback restored from disk: its address, and the code kept alive."""

    def __init__(self, payload: tuple[Any, ...]) -> None:
        from numba.core.compiler import CompileResult
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target

        context = cpu_target.target_context
        with global_compiler_lock:
            # As numba's own cache does before loading: initialises its runtime (NRT), whose
            # symbols the code calls.
            context.refresh()
            cres = CompileResult._rebuild(context, *payload)
        self._library = cres.library
        self.native_name = cres.fndesc.llvm_cfunc_wrapper_name
        self.address = cres.library.get_pointer_to_function(self.native_name)


def _initial_point(n_dim: int) -> Any:
    """Return a chain's initial point function: 0 on the unconstrained scale + U(-1, 1) jitter.

    PyMC's default (the prior's support point) reads the prior means from the data the
    structure was first compiled with, which ``with_data`` does not update: the start would
    depend on which prior a process happened to compile first. 0 is that support point for
    the default priors (centred effects, log tau = 0), whatever the data.
    """

    def initial_point(seed: Any = None) -> np.ndarray:
        return np.random.default_rng(seed).uniform(-1.0, 1.0, n_dim)

    return initial_point


# The C callbacks nutpie's sampler calls, as source: numba compiles these instead of nutpie's
# own wrappers, which unroll a loop over the shared variables and copy the gradient with
# numpy's broadcasting setitem (its shape-mismatch error alone is ~1.5 s of string code);
# measured on a 16-row binomial structure, the log density callback took 11.5 s to compile with
# nutpie's wrapper and 5.1 s with this one, PyTensor's op cache warm. The shapes are
# constants (a structure is padded to fixed sizes; ``StoredModel.with_data`` refuses data of
# any other shape); the data's addresses are read from the record nutpie's ``with_data`` keeps
# up to date, at offsets computed here.
_LOGP_SOURCE = """
def callback(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        words = numba.carray(user_data_, ({n_words},), np.uint64)
{unpack}
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, ())
        value, grad = inner(x{args})
        finite = True
        for i in range({n_dim}):
            out[i] = grad[i]
            if not np.isfinite(grad[i]):
                finite = False
        logp[()] = value
        if not finite:
            return 3
        if not np.isfinite(value):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND_SOURCE = """
def callback(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim} or expanded != {n_expanded}:
        return -1
    try:
        words = numba.carray(user_data_, ({n_words},), np.uint64)
{unpack}
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
        (values,) = inner(x{args})
        for i in range({n_expanded}):
            out[i] = values[i]
    except Exception:
        return -2
    return 0
"""


def _field_offset(record: Any, *path: str) -> int:
    """Byte offset of a nested field of a structured dtype."""
    offset = 0
    for name in path:
        record, start = record.fields[name][:2]
        offset += start
    return offset


def _callback(
    template: str,
    inner: Any,
    names: list[str],
    templates: dict[str, np.ndarray],
    record: np.dtype,
    **sizes: int,
) -> Any:
    """Return the Python function numba compiles into one C callback (see ``_LOGP_SOURCE``)."""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer

    unpack = []
    for i, name in enumerate(names):
        array = templates[name]
        offset = _field_offset(record, "shared", "data", name)
        if offset % 8:
            raise AssertionError(f"record field {name} is not 8-byte aligned")
        unpack.append(
            f"        a{i} = numba.carray(address_as_void_pointer(words[{offset // 8}]), "
            f"{tuple(array.shape)!r}, np.{array.dtype.name})"
        )
    source = template.format(
        n_words=record.itemsize // 8,
        unpack="\n".join(unpack),
        args="".join(f", a{i}" for i in range(len(names))),
        **sizes,
    )
    # ``__name__``: a stored callback's environment is rebuilt by importing its module.
    namespace = {"__name__": __name__, "numba": numba, "np": np,
                 "inner": inner, "address_as_void_pointer": address_as_void_pointer}
    exec(compile(source, "<rebayes callback>", "exec"), namespace)
    return namespace["callback"]


def _compile(design: Design, prior: Any) -> bytes:
    """Compile the design's structure; return the bytes to store (numba's serialisation)."""
    from numba import types
    from numba.core.ccallback import CFunc
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.serialize import dumps
    from numba.core.sigutils import normalize_signature
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords, make_user_data

    from rebayes.bayes.model import build_model

    _reproducible_numba()
    model = build_model(design, prior)
    n_dim, n_expanded, logp_pt, expand_pt, _, shape_info, reparameterized = _make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=lambda seed: {},  # unused: see _initial_point
    )
    # Deterministic record keys (nutpie's are random uuids), and zero-filled templates giving
    # each shared variable's compiled shape and dtype.
    shared_vars = list(dict.fromkeys([*logp_pt.get_shared(), *expand_pt.get_shared()]))
    keys = {var: var.name for var in shared_vars}
    if len(set(keys.values())) != len(keys):
        raise AssertionError(f"shared variable names are not unique: {sorted(keys.values())}")
    templates = {
        var.name: np.zeros_like(np.asarray(var.get_value()), order="C") for var in shared_vars
    }
    user_data = make_user_data(keys, templates)
    double = types.CPointer(types.double)
    sources = {
        "logp": (
            _callback(_LOGP_SOURCE, logp_pt.vm.jit_fn, [keys[v] for v in logp_pt.get_shared()],
                      templates, user_data.dtype, n_dim=n_dim),
            types.int64(types.uint64, double, double, double, types.voidptr),
        ),
        "expand": (
            _callback(_EXPAND_SOURCE, expand_pt.vm.jit_fn,
                      [keys[v] for v in expand_pt.get_shared()], templates, user_data.dtype,
                      n_dim=n_dim, n_expanded=n_expanded),
            types.int64(types.uint64, types.uint64, double, double, types.voidptr),
        ),
    }
    callbacks = {}
    for name, (function, signature) in sources.items():
        with global_compiler_lock:
            # CFunc, not the numba.cfunc decorator: the decorator compiles at once, and the
            # compile result we store would be a second compilation (~1.1 s, measured).
            callback = CFunc(function, normalize_signature(signature), locals={}, options={})
            cres = callback._compile_uncached()  # type: ignore[attr-defined]
            if cres.library.has_dynamic_globals:
                raise AssertionError(f"the {name} callback refers to process memory")
            callbacks[name] = cres._reduce()
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    bundle = {
        "callbacks": callbacks,
        "n_dim": n_dim,
        "n_expanded": n_expanded,
        "shape_info": shape_info,
        "dims": dims,
        "coords": coords,
        "reparameterized_names": reparameterized,
        "shared": [(var.name, templates[var.name].dtype.str, templates[var.name].shape)
                   for var in shared_vars],
        "record_dtype": user_data.dtype,
    }
    return dumps(bundle)


@functools.cache
def _stored_model_class() -> type:
    """Nutpie's compiled-model class, with ``with_data`` refusing shapes other than compiled."""
    from nutpie.compile_pymc import CompiledPyMCModel

    @dataclass(frozen=True)
    class StoredModel(CompiledPyMCModel):  # type: ignore[misc]
        def with_data(self, **updates: Any) -> Any:
            for name, value in updates.items():
                compiled = self.shared_data[name].shape
                if np.shape(value) != compiled:
                    raise ValueError(f"{name} has shape {np.shape(value)}; the compiled "
                                     f"callbacks read {compiled}")
            return super().with_data(**updates)

    return StoredModel


def _build(blob: bytes) -> Any:
    """Build nutpie's compiled model from stored bytes (no PyTensor, no numba compilation)."""
    from nutpie.compile_pymc import update_user_data

    bundle = pickle.loads(blob)
    shared_data = {}
    for name, dtype, shape in bundle["shared"]:
        value = np.zeros(shape, dtype=dtype)
        value.flags.writeable = False
        shared_data[name] = value
    user_data = update_user_data(np.zeros((), dtype=bundle["record_dtype"]), shared_data)
    shape_info = bundle["shape_info"]
    return _stored_model_class()(
        _n_dim=bundle["n_dim"],
        dims=bundle["dims"],
        _coords=bundle["coords"],
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=_LoadedCallback(bundle["callbacks"]["logp"]),
        compiled_expand_func=_LoadedCallback(bundle["callbacks"]["expand"]),
        initial_point_func=_initial_point(bundle["n_dim"]),
        shared_data=shared_data,
        shared_var_keys={_SharedName(name): name for name in shared_data},
        user_data=user_data,
        n_expanded=bundle["n_expanded"],
        shape_info=shape_info,
        logp_func=None,
        expand_func=None,
        reparameterized_names=bundle["reparameterized_names"],
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (POSIX); elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent compilations only duplicate work
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_WHAT = "compiled model"


def read_compiled(path: Path) -> Any | None:
    """Return the model stored at ``path``, or None when it is missing or unreadable.

    Its checksum is verified first (:func:`rebayes.store.paths.read_entry`): damaged bytes
    would be machine code run by the sampler. A damaged or foreign file is noted once and
    compiled again.
    """
    blob = read_entry(path, _WHAT)
    if blob is None:
        return None
    try:
        return _build(blob)
    except Exception as exc:  # noqa: BLE001 - whole but unusable here: compile again
        note_unreadable(path, _WHAT, f"{type(exc).__name__}: {exc}".splitlines()[0])
        return None


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Identity of the file at ``path`` (inode, size, modification time), None if missing."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def load_or_compile(design: Design, prior: Any) -> Any:
    """Return nutpie's compiled model for the design's structure: from disk, or compiled now.

    Parameters
    ----------
    design : Design
    prior : PriorSet
        Any prior: the compiled code does not depend on its values (nor on the design's
        data), only on the structure; set the values with ``with_data``.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
    """
    folder = compiled_dir()
    key = compile_key(design)
    path = folder / f"{key}.pkl"
    with phase("waiting for the model compiled in the background"):
        _wait_for_child(key)
    seen = _stamp(path)
    compiled = read_compiled(path)
    if compiled is not None:
        return compiled
    with contextlib.ExitStack() as stack:
        try:
            make_folder(folder)
            stack.enter_context(_locked(folder / f"{path.stem}.lock"))
        except OSError as exc:
            warn_unwritable(exc)  # compiled without the lock; stored if it can be
        # Another process may have compiled it while we waited for the lock (a new file).
        compiled = read_compiled(path) if _stamp(path) != seen else None
        if compiled is not None:
            return compiled
        # Not when stopping: a compiling child killed by the stop is no reason to compile
        # here, in a thread the process is about to stop.
        interrupt.check()
        with phase("compiling the model (once per model structure on this machine)"):
            blob = _compile(design, prior)
        write_entry(path, blob)
    # Sample with the code as stored, so this process draws what a later one will.
    return _build(blob)


# --- in this process: one compiled model per structure ---------------------------------------

# Keyed by rebayes.bayes.model.structure_key, for the life of the process.
_COMPILED: dict[Any, Any] = {}
_COMPILE_LOCK = threading.Lock()


def compiled_model(design: Design, prior: Any) -> Any:
    """Return the nutpie-compiled model for the design's structure, with this data and prior.

    The first call for a structure in a process loads its compilation from the compile cache
    (:func:`load_or_compile`: ~0.5 s), or compiles it there the first time on this machine;
    later calls reuse it and only replace the ``pm.Data`` values (``with_data``: microseconds).

    Parameters
    ----------
    design : Design
    prior : PriorSet
        On the model's scale (:func:`rebayes.bayes.design.prior_on_model_scale`).

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
    """
    from rebayes.bayes.model import model_data, structure_key

    key = structure_key(design)
    with _COMPILE_LOCK:
        if key not in _COMPILED:
            _COMPILED[key] = load_or_compile(design, prior)
    return _COMPILED[key].with_data(**model_data(design, prior))


def is_compiled(design: Design) -> bool:
    """Whether this process holds the compiled model of the design's structure already."""
    from rebayes.bayes.model import structure_key

    return structure_key(design) in _COMPILED


# --- compiling ahead, in a child process ---------------------------------------------------


class CompilerChild:
    """A child process compiling structures; it prints each one's key when it is on disk."""

    def __init__(self, keys: list[str], process: subprocess.Popen[bytes]) -> None:
        self.pending = set(keys)
        self.process = process
        self.lock = threading.Lock()

    def wait_for(self, key: str) -> None:
        """Return once ``key`` is compiled, or the child has ended (then the caller compiles)."""
        with self.lock:
            while key in self.pending:
                assert self.process.stdout is not None
                line = self.process.stdout.readline()
                if not line:  # ended (failed or killed): whatever is left, compile here
                    self.pending.clear()
                    self.process.wait()
                    break
                self.pending.discard(line.decode().strip())


_CHILDREN: list[CompilerChild] = []


def _wait_for_child(key: str) -> None:
    for child in list(_CHILDREN):
        child.wait_for(key)


_SPARE: list[subprocess.Popen[bytes]] = []
# Every compiling child started, until it is stopped.
_PROCESSES: list[subprocess.Popen[bytes]] = []


def spawn_compiler() -> subprocess.Popen[bytes]:
    """Start a compiling child (:func:`_compile_jobs`); it ends when this process does."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from rebayes.bayes.compilation import _compile_jobs; "
                               "_compile_jobs()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    import atexit

    # A process that ends (or fails) before its child does not leave it compiling.
    atexit.register(_stop, process)
    _PROCESSES.append(process)
    return process


def _stop(process: subprocess.Popen[bytes], timeout: float | None = None) -> bool:
    """Kill a compiling child and wait for it (up to ``timeout``); whether it has ended."""
    if process.poll() is None:
        process.kill()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _stop_children(deadline: float) -> bool:
    """On Ctrl-C (:func:`rebayes.interrupt.shutdown`): end every compiling child.

    A thread waiting for a child's model then sees it end, and compiles nothing itself
    (:func:`load_or_compile` checks for the stop first).
    """
    import time

    ended = [_stop(p, max(0.0, deadline - time.monotonic())) for p in list(_PROCESSES)]
    return all(ended)


interrupt.on_shutdown(interrupt.CHILDREN, _stop_children)


def start_compiler() -> None:
    """Start the child :func:`compile_ahead` will use, if the compile cache is empty.

    Call it first thing in a process about to compile (the report command): the child
    imports PyMC and PyTensor (~2 s) while this process imports its own libraries and loads
    the data, instead of after. With compiled models on disk it does nothing (they are
    most likely the ones needed); without jobs, the child ends at once.
    """
    if _SPARE or any(compiled_dir().glob("*.pkl")):
        return
    _SPARE.append(spawn_compiler())


def compile_ahead(jobs: list[tuple[Design, Any]]) -> None:
    """Compile the structures of ``jobs`` not yet on disk, in a child process, in that order.

    For a process that will sample many fits (a report): compilation runs on another core
    while this process goes on, and PyMC, PyTensor's compiler and numba's never load here,
    which keeps this process ~90 MB smaller (the child, ~400 MB, ends before this process
    has grown much). :func:`load_or_compile` for one of these structures waits until the child
    has stored it, then loads it (~0.5 s); if the child fails, it compiles here as before.

    Parameters
    ----------
    jobs : list of (Design, PriorSet)
        As for :func:`load_or_compile`; designs of one structure are compiled once.
    """
    folder = compiled_dir()
    wanted: dict[str, tuple[Design, Any]] = {}
    for design, prior in jobs:
        key = compile_key(design)
        if key not in wanted and not (folder / f"{key}.pkl").is_file():
            wanted[key] = (design, prior)
    process = _SPARE.pop() if _SPARE else (spawn_compiler() if wanted else None)
    if process is None:
        return
    # From a thread: the child reads once it has imported PyMC, and a pipe holds 64 kB, so
    # a large design would otherwise keep this process waiting.
    threading.Thread(target=_send, args=(process, pickle.dumps(list(wanted.values()))),
                     daemon=True).start()
    if wanted:
        _CHILDREN.append(CompilerChild(list(wanted), process))


def _send(process: subprocess.Popen[bytes], jobs: bytes) -> None:
    """Write the pickled jobs to the child's stdin and close it (no jobs: the child ends)."""
    assert process.stdin is not None
    try:
        process.stdin.write(jobs)
        process.stdin.close()
    except OSError:  # the child ended at once: every structure compiles in the parent
        pass


def _compile_jobs() -> None:
    """Compile each job read from stdin, printing its key (the child of :func:`compile_ahead`)."""
    import signal

    # Ctrl-C at a terminal reaches the whole process group: the parent decides (it kills
    # this child on its way out, rebayes.interrupt), rather than see it end midway and start
    # compiling in its own process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        # Before the jobs arrive: a spare child (start_compiler) loads these meanwhile.
        import nutpie.compile_pymc  # noqa: F401
        import pymc  # noqa: F401
    for design, prior in pickle.loads(sys.stdin.buffer.read()):
        # A structure that fails here is compiled (and its error reported) by the parent.
        with contextlib.suppress(Exception):
            load_or_compile(design, prior)
        print(compile_key(design), flush=True)
