"""What a dataset declares about its table: ``dataset.toml`` as a typed object.

A dataset folder holds ``trials.csv`` and ``dataset.toml``; the TOML says what the counts mean
and how the columns are to be read, so the code never needs to know the paper::

    title = "BCG vaccine against tuberculosis"
    outcome = "tuberculosis"          # the event counted in events_treat / events_control
    treatment = "BCG"
    control = "no vaccine"
    higher_is_better = false          # fewer events is the good direction (omit: undeclared)
    measure = "RR"                    # the published effect measure: RR | OR | RD | PETO_OR
    method = "MH"                     # the published pooling: MH | IV | PETO
    model = "fixed"                   # fixed | random (DerSimonian-Laird)
    tau2 = "DL"                       # random effects: DL | REML | PM (RevMan Web: DL, REML)
    hksj = false                      # random effects: Hartung-Knapp-Sidik-Jonkman intervals
    strata = "stratum"                # optional: column naming the strata of one trial
    report_variants = ["published"]   # data variants the report shows
    analysis_order = ["overall"]      # reading order of the report's analyses

    [citation]
    text = "Colditz et al. 1994, JAMA 271:698-702"

    [covariates.ablat]
    kind = "continuous"
    label = "absolute latitude"
    unit = "degree"
    description = "distance of the trial site from the equator"

    [covariates.alloc]
    kind = "categorical"
    levels = ["random", "alternate", "systematic"]
    reference = "random"

    [columns.confidence]              # a checked column that is not a covariate
    kind = "categorical"
    levels = ["verified", "derived", "uncertain"]

    [[analyses]]                      # a Bayesian analysis as data (AnalysisSpec's fields)
    name = "alloc_separate"
    effect = "separate"
    subgroup = ["alloc"]

Every key is checked: one the schema does not know is an error naming the closest known one
(``unknown key 'measur' (did you mean 'measure'?)``); the known keys of each place are the
``*_KEYS`` tuples below. Only the declared columns get label checks. A bare CSV gets
:meth:`DatasetSchema.defaults`: no strata, no direction of benefit (neutral words until one
is declared), every extra column read as a covariate by its values.

``outcome`` is a short noun for sentences ("a lower risk of death"); an imported outcome has
only RevMan's title, ``outcome_title``, which sentences quote ("a lower risk of the outcome
'Death'"). ``direction_evidence`` says where ``higher_is_better`` came from when it was not
written by hand (``rebayes import`` writes RevMan's graph labels there). ``trials_origin`` and
``publication`` name what the trial table was built from and the publication audited, for the
audit's sentences (defaults: "the trial table", "the publication").

A categorical covariate may name another ``column`` (a covariate read from the strata
column), declare a ``pooled`` level (a row that pools several levels, left out of
contrasts on the covariate, or entered with a known ``shares`` of the non-reference level) and
``scope = "trial"`` (every stratum row of one trial must agree).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rebayes.data.direction import Direction, outcome_phrase
from rebayes.errors import RebayesError, check_keys

__all__ = [
    "ANALYSIS_KEYS",
    "COVARIATE_KEYS",
    "TOP_KEYS",
    "Covariate",
    "DatasetSchema",
    "SchemaError",
    "check_analyses",
    "schema_of",
]

MEASURES = ("RR", "OR", "RD", "PETO_OR")
METHODS = ("MH", "IV", "PETO")
MODELS = ("fixed", "random")
TAU2_METHODS = ("DL", "REML", "PM")
KINDS = ("categorical", "continuous")
OUTCOME_TYPES = (
    "all_cause_mortality",
    "semi_objective",
    "subjective",
    "obstetric",
    "unspecified",
)
# The keys dataset.toml may hold, by place; any other key is an error naming the closest one
# (a misspelt key would otherwise leave its setting silently at the default).
TOP_KEYS: tuple[str, ...] = (
    "title", "citation", "outcome", "outcome_title", "treatment", "control", "higher_is_better",
    "direction_evidence", "trials_origin", "publication", "measure", "method", "model", "tau2",
    "hksj", "ci_level", "outcome_type", "strata", "default_variant",
    "report_variants", "analysis_order", "covariates", "columns", "notes", "frequentist",
    "source", "links", "analyses", "default_analyses",
)
COVARIATE_KEYS: tuple[str, ...] = (
    "kind", "label", "description", "levels", "level_labels", "reference", "column", "pooled",
    "shares", "scope", "unit", "analyse",
)
CITATION_KEYS: tuple[str, ...] = ("text", "doi", "software")
FREQUENTIST_KEYS: tuple[str, ...] = ("title", "by", "where", "split_shared_control")
SOURCE_KEYS: tuple[str, ...] = ("dataset", "studies")
LINK_KEYS: tuple[str, ...] = ("text", "href")
#: Keys of an ``[[analyses]]`` entry: the fields of :class:`rebayes.AnalysisSpec` a dataset
#: declares (``data``, ``prior_file`` and ``higher_is_better`` come from the command).
ANALYSIS_KEYS: tuple[str, ...] = (
    "name", "title", "variant", "likelihood", "split_by_stratum", "strata", "covariates",
    "effect", "mixed", "subgroup", "priors", "seed",
)


class SchemaError(RebayesError):
    """``dataset.toml`` is invalid (one-line message naming the file and the key)."""


@dataclass(frozen=True)
class Covariate:
    """One declared column: a covariate the analyses may use, or a checked label column.

    Attributes
    ----------
    name : str
        How specs and ``--by`` refer to it.
    column : str
        The table column holding its values (usually ``name``).
    kind : {"categorical", "continuous"}
    label : str
        Reader-facing name ("absolute latitude").
    description : str
    levels : tuple of str
        Allowed values of a categorical column, in reading order (checked on load); empty:
        any value.
    level_labels : dict
        Reader-facing name of each level.
    reference : str or None
        The level contrasts are taken against (default: the first level).
    pooled : str or None
        A level meaning "this row pools several levels" (e.g. a trial that did not report the
        split); such rows belong to no subgroup of this covariate.
    shares : dict
        For pooled rows, the known share of the non-reference level, by study.
    scope : {"row", "trial"}
        ``trial``: every stratum row of one trial must have the same value.
    unit : str
        Unit of a continuous covariate (its slope is per unit).
    analyse : bool
        Whether the default report runs a subgroup / meta-regression analysis on it.
    """

    name: str
    column: str
    kind: Literal["categorical", "continuous"] = "categorical"
    label: str = ""
    description: str = ""
    levels: tuple[str, ...] = ()
    level_labels: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = None
    pooled: str | None = None
    shares: Mapping[str, float] = field(default_factory=dict)
    scope: Literal["row", "trial"] = "row"
    unit: str = ""
    analyse: bool = True

    @property
    def title(self) -> str:
        """Reader-facing name (the label, else the name)."""
        return self.label or self.name

    @property
    def reference_level(self) -> str | None:
        """The level contrasts are taken against."""
        if self.reference is not None:
            return self.reference
        real = [lv for lv in self.levels if lv != self.pooled]
        return real[0] if real else None

    def level_title(self, level: str) -> str:
        """Reader-facing name of a level."""
        return self.level_labels.get(level, level.replace("_", " "))


@dataclass(frozen=True)
class DatasetSchema:
    """The parsed ``dataset.toml`` (or the defaults of a bare CSV).

    Attributes
    ----------
    title, treatment, control : str
        What the table compares.
    outcome : str
        The event counted, as a short noun for sentences (``"death"``); empty when not given.
    outcome_title : str
        The outcome's title where no short noun is given (RevMan's outcome name).
    higher_is_better : bool or None
        Whether more events is the good direction (benefit = RR > 1); None: undeclared.
    direction_evidence : str
        Where ``higher_is_better`` came from, if not written by hand (e.g. RevMan's labels).
    trials_origin : str
        What the trial table was built from, as the audit names it (``"the trial table"``).
    publication : str
        What the audit calls the publication (``"the publication"``).
    measure, method, model : str
        The published analysis (RevMan's names).
    tau2 : str
        The random-effects estimator of tau^2: ``DL`` (RevMan 5), ``REML`` or ``PM``.
    hksj : bool
        Whether the random-effects interval is Hartung-Knapp-Sidik-Jonkman's (RevMan Web).
    ci_level : float
        Confidence level of the published intervals (0.95).
    outcome_type : str
        Turner et al. (2015) outcome type, choosing the matching heterogeneity priors.
    citation : dict
        ``text``, ``doi``, ``software``.
    strata : str or None
        Column naming the strata of one trial (rows sharing a study name and differing here
        are parts of one trial); None: every row is a study of its own.
    covariates : dict of str to Covariate
        Declared covariates, in declaration order.
    columns : dict of str to Covariate
        Other declared (checked) columns.
    default_variant : str
    report_variants : tuple of str
    analysis_order : tuple of str
    notes : tuple of str
        Sentences the report shows under the title.
    links : tuple of dict
        ``text`` and ``href`` of related reports the index links (e.g. a second dataset's
        report in a subfolder).
    source : dict
        ``dataset`` (a shipped dataset's name, or a folder relative to this one) and
        ``studies``: the table is those studies' rows of that dataset's table, by reference,
        not a copy (empty: the folder has its own ``trials.csv``).
    frequentist : tuple of dict
        The RevMan analyses the report tabulates (``title``, optional ``by`` column,
        ``where`` filters and ``split_shared_control``), e.g. the paper's figures in its
        order; empty: the overall analysis and one per declared categorical covariate.
    """

    title: str = ""
    outcome: str = ""
    outcome_title: str = ""
    treatment: str = "treatment"
    control: str = "control"
    higher_is_better: bool | None = None
    direction_evidence: str = ""
    trials_origin: str = "the trial table"
    publication: str = "the publication"
    measure: str = "RR"
    method: str = "MH"
    model: str = "fixed"
    tau2: str = "DL"
    hksj: bool = False
    ci_level: float = 0.95
    outcome_type: str = "unspecified"
    citation: Mapping[str, str] = field(default_factory=dict)
    strata: str | None = None
    covariates: Mapping[str, Covariate] = field(default_factory=dict)
    columns: Mapping[str, Covariate] = field(default_factory=dict)
    default_variant: str = "published"
    report_variants: tuple[str, ...] = ("published",)
    analysis_order: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    frequentist: tuple[Mapping[str, Any], ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[Mapping[str, str], ...] = ()

    # A trial table carries its schema in ``DataFrame.attrs``, and pandas deep-copies attrs on
    # every operation (``__finalize__``): copying this nested, never-mutated value each time
    # cost 13 s of a cached report's profile. A frozen schema is shared, not copied.
    def __copy__(self) -> DatasetSchema:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> DatasetSchema:
        return self

    @classmethod
    def defaults(cls, title: str = "") -> DatasetSchema:
        """Return the schema of a bare CSV: no strata, no direction declared."""
        return cls(title=title)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "dataset.toml") -> DatasetSchema:
        """Parse and check the contents of ``dataset.toml``.

        Parameters
        ----------
        raw : mapping
            The TOML as loaded by :mod:`tomllib`.
        where : str
            The file's name, for messages.

        Raises
        ------
        SchemaError
            One line naming the file and the key.
        """
        check_keys(raw, TOP_KEYS, where, error=SchemaError)
        direction = raw.get("higher_is_better")
        if direction is not None and not isinstance(direction, bool):
            raise _fail(where, "higher_is_better", f"must be true or false, not {direction!r}")
        ci_level = _ci_level(raw, where)
        citation = _citation(raw, where)
        strata = raw.get("strata")
        if strata is not None and (not isinstance(strata, str) or not strata):
            raise _fail(where, "strata", "must be the name of a column")
        covariates = _parse_columns(raw.get("covariates", {}), where, "covariates", True)
        columns = _parse_columns(raw.get("columns", {}), where, "columns", False)
        notes = raw.get("notes", [])
        if isinstance(notes, str):
            notes = [notes]
        frequentist = _frequentist(raw, where)
        source = _source(raw, where)
        model, tau2, hksj = _random_effects(raw, where)
        links = _links(raw, where)
        check_analyses(raw, where)
        measure, method = _measure_and_method(raw, where, model)
        return cls(
            title=_text(raw, where, "title"),
            outcome=_text(raw, where, "outcome"),
            outcome_title=_text(raw, where, "outcome_title"),
            treatment=_text(raw, where, "treatment", "treatment"),
            control=_text(raw, where, "control", "control"),
            higher_is_better=direction,
            direction_evidence=_text(raw, where, "direction_evidence"),
            trials_origin=_text(raw, where, "trials_origin", "the trial table"),
            publication=_text(raw, where, "publication", "the publication"),
            measure=measure,
            method=method,
            model=model,
            tau2=tau2,
            hksj=hksj,
            ci_level=ci_level,
            outcome_type=_choice(raw, where, "outcome_type", OUTCOME_TYPES, "unspecified"),
            citation={str(k): str(v) for k, v in citation.items()},
            strata=strata,
            covariates=covariates,
            columns=columns,
            default_variant=_text(raw, where, "default_variant", "published"),
            report_variants=_names(raw, where, "report_variants", ("published",)),
            analysis_order=_names(raw, where, "analysis_order", ()),
            notes=tuple(str(n) for n in notes),
            frequentist=tuple(frequentist),
            source=source,
            links=tuple(links),
        )

    # --- what the rest of the package asks --------------------------------------------------

    def declared(self, name: str) -> Covariate | None:
        """Return the covariate or checked column called ``name`` (None if undeclared)."""
        return self.covariates.get(name) or self.columns.get(name)

    def checked_columns(self) -> list[Covariate]:
        """Return the declared categorical columns whose values are checked on load."""
        seen: dict[str, Covariate] = {}
        for cov in (*self.covariates.values(), *self.columns.values()):
            if cov.kind == "categorical" and cov.levels and cov.column not in seen:
                seen[cov.column] = cov
        return list(seen.values())

    def trial_columns(self) -> list[str]:
        """Columns that must agree across the strata rows of one trial."""
        return list(
            dict.fromkeys(
                c.column
                for c in (*self.covariates.values(), *self.columns.values())
                if c.scope == "trial"
            )
        )

    def with_direction(self, higher_is_better: bool | None) -> DatasetSchema:
        """Return the schema with a command-line direction (``--lower-is-better``) applied.

        None, or the direction already declared: the schema itself. Otherwise the direction's
        evidence names the flag, which outputs then cite.
        """
        if higher_is_better is None or higher_is_better == self.higher_is_better:
            return self
        flag = "--higher-is-better" if higher_is_better else "--lower-is-better"
        return replace(self, higher_is_better=higher_is_better, direction_evidence=flag)

    @property
    def direction_declared(self) -> bool:
        """Whether ``higher_is_better`` is declared (False: neutral words everywhere)."""
        return self.higher_is_better is not None

    @property
    def outcome_phrase(self) -> str:
        """The outcome as a noun phrase for "a lower risk of ...".

        ``outcome`` when given (``"death"``); else the quoted title (``"the outcome 'Death'"``);
        else ``"the event"``.
        """
        return outcome_phrase(self.outcome, self.outcome_title)

    @property
    def direction(self) -> Direction:
        """The direction of benefit and the labels (one home: :class:`rebayes.Direction`)."""
        return Direction.from_schema(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (what the JSON outputs state about the dataset)."""
        return {
            "title": self.title,
            "outcome": self.outcome_phrase,
            "treatment": self.treatment,
            "control": self.control,
            "higher_is_better": self.higher_is_better,
            "direction_declared": self.direction_declared,
            "direction_evidence": self.direction_evidence,
            "measure": self.measure,
            "method": self.method,
            "model": self.model,
            **({"tau2": self.tau2, "hksj": self.hksj} if self.model == "random" else {}),
        }


def _fail(where: str, key: str, message: str) -> SchemaError:
    """Return the error naming the file and the key."""
    return SchemaError(f"{where}: {key}: {message}")


def _text(raw: Mapping[str, Any], where: str, key: str, default: str = "") -> str:
    """Return a string key's value (``default`` when absent)."""
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise _fail(where, key, f"must be a string, not {value!r}")
    return value


def _choice(
    raw: Mapping[str, Any], where: str, key: str, allowed: tuple[str, ...], default: str
) -> str:
    """Return a key's value, one of ``allowed`` (``default`` when absent)."""
    value = _text(raw, where, key, default)
    if value not in allowed:
        raise _fail(where, key, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _names(
    raw: Mapping[str, Any], where: str, key: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    """Return a list-of-strings key's value (``default`` when absent)."""
    value = raw.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, key, "must be a list of strings")
    return tuple(value)


def _ci_level(raw: Mapping[str, Any], where: str) -> float:
    """Return ``ci_level``, a number in [0.5, 1) (0.95 when absent)."""
    ci_level = raw.get("ci_level", 0.95)
    if (
        isinstance(ci_level, bool)
        or not isinstance(ci_level, int | float)
        or not 0.5 <= ci_level < 1
    ):
        raise _fail(where, "ci_level", f"{ci_level!r} must be a number in [0.5, 1), e.g. 0.95")
    return float(ci_level)


def _citation(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Return ``[citation]`` as a table (a bare string is its ``text``)."""
    citation = raw.get("citation", {})
    if isinstance(citation, str):
        citation = {"text": citation}
    if not isinstance(citation, dict):
        raise _fail(where, "citation", "must be a string or a table")
    check_keys(citation, CITATION_KEYS, where, "citation.", SchemaError)
    return citation


def _frequentist(raw: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """Return the ``[[frequentist]]`` tables, each with a title."""
    frequentist = raw.get("frequentist", [])
    if not isinstance(frequentist, list) or not all(
        isinstance(a, dict) and isinstance(a.get("title"), str) for a in frequentist
    ):
        raise _fail(where, "frequentist",
                    "must be a list of tables with a title ([[frequentist]])")
    for i, analysis in enumerate(frequentist, start=1):
        check_keys(analysis, FREQUENTIST_KEYS, where, f"frequentist[{i}].", SchemaError)
    return frequentist


def _source(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Return ``[source]``: a dataset's name and its studies (empty when absent)."""
    source = raw.get("source", {})
    if not isinstance(source, dict) or (
        source and (not isinstance(source.get("dataset"), str)
                    or not isinstance(source.get("studies", []), list))
    ):
        raise _fail(where, "source", "must be a table with dataset = NAME and studies = [...]")
    check_keys(source, SOURCE_KEYS, where, "source.", SchemaError)
    return source


def _random_effects(raw: Mapping[str, Any], where: str) -> tuple[str, str, bool]:
    """Return ``model``, ``tau2`` and ``hksj``; the last two only under random effects."""
    model = _choice(raw, where, "model", MODELS, "fixed")
    tau2 = _choice(raw, where, "tau2", TAU2_METHODS, "DL")
    hksj = raw.get("hksj", False)
    if not isinstance(hksj, bool):
        raise _fail(where, "hksj", f"must be true or false, not {hksj!r}")
    if model == "fixed" and (tau2 != "DL" or hksj):
        raise _fail(where, "tau2" if tau2 != "DL" else "hksj",
                    'belongs to the random-effects model (set model = "random")')
    return model, tau2, hksj


def _links(raw: Mapping[str, Any], where: str) -> list[dict[str, str]]:
    """Return the ``[[links]]`` tables, each with text and href."""
    links = raw.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(x, dict) and isinstance(x.get("text"), str)
        and isinstance(x.get("href"), str) for x in links
    ):
        raise _fail(where, "links", "must be a list of tables with text and href ([[links]])")
    for i, link in enumerate(links, start=1):
        check_keys(link, LINK_KEYS, where, f"links[{i}].", SchemaError)
    return links


def _measure_and_method(raw: Mapping[str, Any], where: str, model: str) -> tuple[str, str]:
    """Return ``measure`` and ``method``; either naming Peto makes both Peto's."""
    measure = _choice(raw, where, "measure", MEASURES, "RR")
    method = _choice(raw, where, "method", METHODS, "MH")
    peto = method == "PETO" or measure == "PETO_OR"
    if method == "PETO" and measure not in ("OR", "PETO_OR"):
        raise _fail(where, "measure", f"Peto's method pools odds ratios only, not {measure}")
    if peto and model == "random":
        raise _fail(where, "model", "Peto's method is fixed-effect only (as in RevMan): use "
                    'model = "fixed"')
    return ("PETO_OR", "PETO") if peto else (measure, method)


def check_analyses(raw: Mapping[str, Any], where: str = "dataset.toml") -> None:
    """Check the ``[[analyses]]`` entries and ``default_analyses`` of a ``dataset.toml``.

    Each entry is a table of :data:`ANALYSIS_KEYS` with a ``name`` of its own; the values
    are checked as an :class:`rebayes.AnalysisSpec` when the analyses are built
    (:func:`rebayes.bayes.analyses.declared_specs`).

    Parameters
    ----------
    raw : mapping
        The TOML as loaded by :mod:`tomllib`.
    where : str
        The file's name, for messages.

    Raises
    ------
    SchemaError
        One line naming the file and the entry.
    """
    default = raw.get("default_analyses", True)
    if not isinstance(default, bool):
        raise SchemaError(f"{where}: default_analyses: must be true or false, not {default!r}")
    entries = raw.get("analyses", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SchemaError(f"{where}: analyses: must be a list of tables ([[analyses]])")
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        check_keys(entry, ANALYSIS_KEYS, where, f"analyses[{i}].", SchemaError)
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SchemaError(f"{where}: analyses[{i}]: needs a name (name = \"...\")")
        if name in seen:
            raise SchemaError(f"{where}: analyses[{i}]: name {name!r} is declared twice")
        seen.add(name)


def _parse_columns(raw: Any, where: str, part: str, analysed: bool) -> dict[str, Covariate]:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: {part}: must be a table of tables")
    out: dict[str, Covariate] = {}
    for name, body in raw.items():
        key = f"{where}: {part}.{name}"
        if not isinstance(body, dict):
            raise SchemaError(f"{key}: must be a table (kind, levels, reference, ...)")
        check_keys(body, COVARIATE_KEYS, where, f"{part}.{name}.", SchemaError)
        kind = body.get("kind", "categorical")
        if kind not in KINDS:
            raise SchemaError(f"{key}: kind={kind!r} is not one of {', '.join(KINDS)}")
        levels = body.get("levels", [])
        if not isinstance(levels, list) or not all(isinstance(v, str) for v in levels):
            raise SchemaError(f"{key}: levels must be a list of strings")
        if kind == "continuous" and levels:
            raise SchemaError(f"{key}: a continuous covariate has no levels")
        labels = body.get("level_labels", {})
        if not isinstance(labels, dict):
            raise SchemaError(f"{key}: level_labels must be a table of level = label")
        if levels:
            check_keys(labels, levels, where, f"{part}.{name}.level_labels.", SchemaError)
        for attr in ("reference", "pooled"):
            value = body.get(attr)
            if value is not None and levels and value not in levels:
                raise SchemaError(f"{key}: {attr}={value!r} is not one of its levels")
        shares = body.get("shares", {})
        if not isinstance(shares, dict):
            raise SchemaError(f"{key}: shares must be a table of study = share")
        for study, share in shares.items():
            if (
                isinstance(share, bool)
                or not isinstance(share, int | float)
                or not (math.isfinite(share) and 0 <= share <= 1)
            ):
                raise SchemaError(f"{key}: shares.{study}={share!r} must be in [0, 1]")
        scope = body.get("scope", "row")
        if scope not in ("row", "trial"):
            raise SchemaError(f"{key}: scope={scope!r} is not one of row, trial")
        out[name] = Covariate(
            name=name,
            column=str(body.get("column", name)),
            kind=kind,
            label=str(body.get("label", "")),
            description=str(body.get("description", "")),
            levels=tuple(levels),
            level_labels={str(k): str(v) for k, v in labels.items()},
            reference=body.get("reference"),
            pooled=body.get("pooled"),
            shares={str(k): float(v) for k, v in shares.items()},
            scope=scope,
            unit=str(body.get("unit", "")),
            analyse=bool(body.get("analyse", analysed)),
        )
    return out


def schema_of(trials: Any) -> DatasetSchema:
    """Return the schema of a table: a TrialTable's own, else a DataFrame's ``attrs["schema"]``.

    A DataFrame without one gets the defaults of a bare CSV (no strata, undeclared
    direction). Where the direction of benefit matters, take the table through
    :func:`rebayes.data.trial_table.as_table` instead, which refuses such a frame.

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
        A table from :func:`rebayes.load_table` or :func:`rebayes.load_trials`, or any
        DataFrame.
    """
    schema = getattr(trials, "schema", None)
    if not isinstance(schema, DatasetSchema):
        schema = getattr(trials, "attrs", {}).get("schema")
    return schema if isinstance(schema, DatasetSchema) else DatasetSchema.defaults()
