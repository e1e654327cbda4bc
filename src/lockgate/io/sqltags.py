"""Which input columns each column of a SQL query's result comes from, and so which
classification tags it carries: provenance traced through DuckDB's parsed query
(`json_serialize_sql`), through CTEs, subqueries, joins and set operations. An output column
takes the most sensitive tag of every input column its expression references (counts drop it),
and what cannot be traced takes every visible input column (column lineage and tags alike)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from lockgate.model.classification import is_raw, tag_of

if TYPE_CHECKING:
    import pyarrow as pa


IDENTITY, TRANSFORMATION, AGGREGATION = 0, 1, 2
KINDS = ("identity", "transformation", "aggregation")
"""How an output column uses an input column (OpenLineage's DIRECT subtypes), by level: a
column passed as it is, computed from it, or summarised from many rows of it."""


class Source(NamedTuple):
    """An input column an expression draws on: the input's name (lower case, as the query
    names it), the column's name as the input spells it, its tag, and how it is used (`KINDS`
    index). A counted column (`count(email)`) is drawn on without its tag."""

    input: str
    column: str
    tag: str | None
    kind: int


Tags = tuple[Source, ...]
"""The input columns an expression draws on, in reading order, each once."""

AGGREGATES = frozenset(
    {
        "any_value", "approx_quantile", "approx_top_k", "arbitrary", "arg_max", "arg_max_null",
        "arg_max_nulls_last", "arg_min", "arg_min_null", "arg_min_nulls_last", "argmax", "argmin",
        "array_agg", "avg", "bit_and", "bit_or", "bit_xor", "bitstring_agg", "bool_and",
        "bool_or", "corr", "covar_pop", "covar_samp", "decimal_average", "entropy", "favg",
        "first", "fsum", "group_concat", "histogram", "histogram_exact", "kahan_sum", "kurtosis",
        "kurtosis_pop", "last", "list", "listagg", "mad", "max", "max_by", "mean", "median",
        "min", "min_by", "mode", "product", "quantile", "quantile_cont", "quantile_disc",
        "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope",
        "regr_sxx", "regr_sxy", "regr_syy", "reservoir_quantile", "sem", "skewness", "stddev",
        "stddev_pop", "stddev_samp", "string_agg", "sum", "sum_no_overflow", "sumkahan",
        "var_pop", "var_samp", "variance",
    }
)  # fmt: skip
"""DuckDB's aggregate functions other than counting ones (their result summarises rows)."""


class Traced(NamedTuple):
    """An output column's tag (see `strongest`) and the input columns it comes from, each
    (input, column, kind) once, in reading order."""

    tag: str | None
    sources: tuple[Source, ...]


COUNTING = frozenset({"count", "count_star", "count_if", "countif", "approx_count_distinct"})
"""Functions whose result counts values instead of showing them: their arguments pass no tag
(`count(email)` is a number, not an e-mail address)."""
ROW_SOURCES = frozenset({"range", "generate_series", "unnest"})
"""Table functions whose rows come from their arguments only (any other, such as
`query_table`, may read any input: its columns take every input's tags)."""


def carried_tags(
    tree: Mapping[str, Any],
    inputs: Mapping[str, pa.Schema],
    names: list[str],
    query: str = "",
) -> list[str | None]:
    """The tag each output column inherits from the input columns it is computed from (see
    `trace`)."""
    return [traced.tag for traced in trace(tree, inputs, names, query)]


def trace(
    tree: Mapping[str, Any],
    inputs: Mapping[str, pa.Schema],
    names: list[str],
    query: str = "",
    aggregates: frozenset[str] = AGGREGATES,
) -> list[Traced]:
    """For each output column: the tag it inherits from the input columns it is computed from
    (see `strongest`) and those columns, for the query `tree` (DuckDB's `json_serialize_sql`
    form of its statement) whose result has the columns `names`.

    Every expression of the select list is walked, through CTEs (recursive ones too), derived
    tables, joins, set operations, scalar and lateral subqueries, `*` (with EXCLUDE, REPLACE,
    RENAME) and lambdas, and the input columns it references are collected; an output column
    takes the most sensitive of their tags. The arguments of counting functions (`COUNTING`)
    are not collected; filters (WHERE, HAVING, JOIN ... ON) are not either, since they pick rows
    without putting values in them. Where provenance cannot be resolved, the tags err on the
    safe side: a column name not found, or a relation whose columns are unknown (COLUMNS(...),
    PIVOT, another table function) gives every tag of the inputs the query can see there; a
    query shape not understood at all gives each column the most sensitive tag of all the
    inputs. `query` is the SQL text of `tree`: DuckDB's tree drops the `*` of calls such as
    `hash(*)` or `struct_pack(*)`, which the text shows.

    Column lineage follows the same walk: a column referenced as it is (also renamed, through
    CTEs and subqueries) is an identity, one inside any other expression a transformation, one
    inside an aggregate function (`aggregates`) or a count an aggregation; what cannot be
    traced draws on every column in sight, as a transformation."""
    lineage = _Lineage(inputs, query, aggregates)
    try:
        rel = lineage.node(tree, {}, None)
    except Exception:  # an unexpected tree shape: no provenance, so assume the worst
        rel = lineage.unknown
    if rel.exact and len(rel.cols) == len(names):
        return [_traced(col.tags) for col in rel.cols]
    # the columns did not line up one by one (USING joins merge columns, COLUMNS(...) picks
    # some): match them by name, and a column no prediction names takes every tag seen
    out: list[Traced] = []
    for name in names:
        hits = [col.tags for col in rel.cols if col.name == name.lower()]
        tags = _merge(*hits, () if rel.exact else rel.rest) if hits else rel.every()
        out.append(_traced(tags))
    return out


def _traced(tags: Tags) -> Traced:
    used = {(s.input, s.column, s.kind): s for s in tags}
    return Traced(strongest(s.tag for s in tags), tuple(used.values()))


def _at_least(tags: Iterable[Source], kind: int) -> list[Source]:
    """The same columns, used at least as `kind` (a function over a column transforms it)."""
    return [s if s.kind >= kind else s._replace(kind=kind) for s in tags]


def strongest(tags: Iterable[str | None]) -> str | None:
    """The most sensitive tag: the first raw one (`pii.email`), else the first transformed
    one (`pii.email/tokenized`), else `none` when given, else None. "First" is in reading
    order: `email || phone` with both raw is `pii.email` (deterministic; both are raw, so
    the column is masked and protected either way)."""
    present = [t for t in tags if t]
    for tag in present:
        if is_raw(tag):
            return tag
    for tag in present:
        if tag != "none":
            return tag
    return present[0] if present else None


def _merge(*groups: Iterable[Source]) -> Tags:
    return tuple(dict.fromkeys(tag for group in groups for tag in group))


@dataclass(frozen=True)
class _Col:
    name: str | None
    """Lower case; None when the query does not name it (DuckDB makes up a name)."""
    tags: Tags


@dataclass(frozen=True)
class _Rel:
    """A relation's columns as far as known. `exact`: `cols` are its columns, in order;
    otherwise they are the columns it may have, and any other column may carry `rest`."""

    cols: tuple[_Col, ...]
    exact: bool = True
    rest: Tags = ()

    def every(self) -> Tags:
        return _merge(*(col.tags for col in self.cols), self.rest)

    def lookup(self, name: str) -> tuple[Tags | None, bool]:
        """The tags of the column `name` and whether it surely is this relation's (None: it is
        not)."""
        hits = [col.tags for col in self.cols if col.name == name]
        if hits:
            return _merge(*hits, () if self.exact else self.rest), True
        return (None, True) if self.exact else (self.rest, False)

    def renamed(self, names: Sequence[Any]) -> _Rel:
        """With its first columns renamed (`AS t(a, b)`, `WITH x(a, b) AS ...`)."""
        if not names:
            return self
        new = [str(n).lower() for n in names]
        if not self.exact:
            every = self.every()
            return _Rel(self.cols + tuple(_Col(n, every) for n in new), False, self.rest)
        cols = [_Col(n, col.tags) for n, col in zip(new, self.cols, strict=False)]
        return _Rel(tuple(cols) + self.cols[len(cols) :])


@dataclass(frozen=True)
class _Binding:
    """A relation in a FROM clause, under its alias (lower case)."""

    alias: str
    rel: _Rel
    hidden: frozenset[str] = frozenset()
    """Columns an unqualified `*` leaves out (the right side of USING and NATURAL joins)."""


@dataclass
class _Scope:
    """What names resolve to inside one SELECT: its FROM clause, then the enclosing query's."""

    bindings: list[_Binding]
    outer: _Scope | None
    ctes: Mapping[str, _Rel]
    aliases: dict[str, Tags] = field(default_factory=dict)
    """Earlier select items by alias (DuckDB lets later items use them)."""
    params: frozenset[str] = frozenset()
    """Lambda parameters (their values come from the list argument, collected there)."""

    def find(self, parts: list[str]) -> tuple[Tags | None, list[Tags]]:
        """The tags of a column reference if it surely resolves here, and the tags of
        relations here whose columns are unknown (it may be one of theirs)."""
        if len(parts) == 1 and parts[0] in self.params:
            return (), []
        sure: list[Tags] = []
        maybe: list[Tags] = []

        def add(found: tuple[Tags | None, bool]) -> None:
            tags, certain = found
            if tags is not None:
                (sure if certain else maybe).append(tags)

        for binding in self.bindings:
            if len(parts) >= 2 and binding.alias == parts[0]:
                add(binding.rel.lookup(parts[1]))  # table.column[.field]
            if len(parts) >= 3 and binding.alias == parts[1]:
                add(binding.rel.lookup(parts[2]))  # schema.table.column
            add(binding.rel.lookup(parts[0]))  # column[.field...]
            if len(parts) == 1 and binding.alias == parts[0]:
                sure.append(binding.rel.every())  # the whole row, as a struct
        if parts[0] in self.aliases:
            sure.append(self.aliases[parts[0]])
        return (_merge(*sure) if sure else None), maybe

    def every(self) -> Tags:
        """Every tag of the relations this scope and the enclosing ones can see."""
        scope: _Scope | None = self
        found: list[Tags] = []
        while scope is not None:
            found.extend(b.rel.every() for b in scope.bindings)
            scope = scope.outer
        return _merge(*found)

    def sees_any(self) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if scope.bindings:
                return True
            scope = scope.outer
        return False


class _Lineage:
    """Column provenance over DuckDB's JSON syntax tree (see `carried_tags`)."""

    def __init__(
        self,
        inputs: Mapping[str, pa.Schema],
        query: str = "",
        aggregates: frozenset[str] = AGGREGATES,
    ) -> None:
        self.text = query.encode()
        self.aggregates = aggregates
        self.inputs = {
            name.lower(): _Rel(
                tuple(
                    _Col(f.name.lower(), (Source(name.lower(), f.name, tag_of(f), IDENTITY),))
                    for f in s
                )
            )
            for name, s in inputs.items()
        }
        every = _merge(*(rel.every() for rel in self.inputs.values()))
        self.all = _merge(_at_least(every, TRANSFORMATION))
        self.unknown = _Rel((), exact=False, rest=self.all)
        """A relation nothing is known of: it may hold any input's columns."""

    # -- query nodes --------------------------------------------------------------------------
    def node(self, node: Any, ctes: Mapping[str, _Rel], outer: _Scope | None) -> _Rel:
        if not isinstance(node, Mapping):
            return self.unknown
        ctes = self._ctes(node, ctes, outer)
        kind = node.get("type")
        if kind == "SELECT_NODE":
            return self._select(node, ctes, outer)
        if kind == "SET_OPERATION_NODE":
            children = node.get("children") or [node.get("left"), node.get("right")]
            rels = [self.node(child, ctes, outer) for child in children if child]
            return _union(rels, by_name="BY_NAME" in str(node.get("setop_type")))
        if kind == "RECURSIVE_CTE_NODE":
            return self._recursive(node, ctes, outer)
        return self.unknown

    def _ctes(
        self, node: Mapping[str, Any], ctes: Mapping[str, _Rel], outer: _Scope | None
    ) -> Mapping[str, _Rel]:
        entries = (node.get("cte_map") or {}).get("map") or []
        if not entries:
            return ctes
        known = dict(ctes)
        for entry in entries:
            value = entry.get("value") or {}
            rel = self.node(value.get("query_node"), known, outer)
            known[str(entry.get("key")).lower()] = rel.renamed(value.get("aliases") or [])
        return known

    def _recursive(
        self, node: Mapping[str, Any], ctes: Mapping[str, _Rel], outer: _Scope | None
    ) -> _Rel:
        """A recursive CTE: its first part, then the recursive part over the CTE so far, until
        the tags stop growing (they can only grow, so this ends)."""
        name = str(node.get("cte_name") or "").lower()
        aliases = node.get("aliases") or []
        rel = self.node(node.get("left"), ctes, outer).renamed(aliases)
        for _ in range(32):
            right = self.node(node.get("right"), {**ctes, name: rel}, outer)
            grown = _union([rel, right]).renamed(aliases)
            if grown == rel:
                return rel
            rel = grown
        return _Rel(rel.cols, False, rel.every())

    def _select(
        self, node: Mapping[str, Any], ctes: Mapping[str, _Rel], outer: _Scope | None
    ) -> _Rel:
        scope = _Scope(self._from(node.get("from_table"), ctes, outer), outer, ctes)
        cols: list[_Col] = []
        rests: list[Tags] = []
        exact = True
        for item in node.get("select_list") or []:
            if item.get("class") == "STAR":
                expanded, known, rest = self._star(item, scope)
                cols.extend(expanded)
                rests.append(rest)
                exact = exact and known
                continue
            tags = self.expr(item, scope)
            if _expands(item):  # f(COLUMNS(...)): one column per match, named by DuckDB
                rests.append(tags)
                exact = False
                continue
            alias = str(item.get("alias") or "").lower()
            name = alias
            if not name and item.get("class") == "COLUMN_REF":
                name = str((item.get("column_names") or [""])[-1]).lower()
            cols.append(_Col(name or None, tags))
            if alias:
                scope.aliases[alias] = tags
        return _Rel(tuple(cols)) if exact else _Rel(tuple(cols), False, _merge(*rests))

    def _star(self, item: Mapping[str, Any], scope: _Scope) -> tuple[list[_Col], bool, Tags]:
        """The columns `*` (or `t.*`, or COLUMNS(...)) stands for, whether that list is exact,
        and the tags of columns it may also stand for."""
        qualifier = str(item.get("relation_name") or "").lower()
        bindings = [b for b in scope.bindings if not qualifier or b.alias == qualifier]
        if qualifier and not bindings:  # `s.*` over a struct column, or an outer table
            return [], False, self._resolve([qualifier], scope)
        if item.get("columns") or item.get("expr") is not None:
            # COLUMNS('regex'), COLUMNS(lambda): some of these columns, under their names
            extra = self.expr(item.get("expr"), scope)
            some = [_Col(c.name, _merge(c.tags, extra)) for b in bindings for c in b.rel.cols]
            return some, False, _merge(*(b.rel.rest for b in bindings), extra)
        excluded = {str(name).lower() for name in item.get("exclude_list") or []}
        qualified = [
            (str(q.get("table") or "").lower(), str(q.get("column") or "").lower())
            for q in item.get("qualified_exclude_list") or []
            if isinstance(q, Mapping)
        ]
        replaced = {
            str(r.get("key")).lower(): self.expr(r.get("value"), scope)
            for r in item.get("replace_list") or []
        }
        renames: dict[tuple[str, str], str] = {}
        for r in item.get("rename_list") or []:
            key = r.get("key") or {}
            target = (str(key.get("table") or "").lower(), str(key.get("column") or "").lower())
            renames[target] = str(r.get("value") or "").lower()
        cols: list[_Col] = []
        known = True
        unknown: list[Tags] = []
        for b in bindings:
            if not b.rel.exact:
                known = False
                unknown.append(b.rel.rest)
            for col in b.rel.cols:
                name = col.name or ""
                if name in excluded or (not qualifier and name in b.hidden):
                    continue
                if any(c == name and t in ("", b.alias) for t, c in qualified):
                    continue
                new = renames.get((b.alias, name)) or renames.get(("", name)) or col.name
                cols.append(_Col(new, replaced.get(name, col.tags)))
        return cols, known, _merge(*unknown)

    # -- FROM clauses -------------------------------------------------------------------------
    def _from(self, ref: Any, ctes: Mapping[str, _Rel], outer: _Scope | None) -> list[_Binding]:
        if not isinstance(ref, Mapping) or ref.get("type") in (None, "EMPTY"):
            return []
        kind = ref.get("type")
        alias = str(ref.get("alias") or "").lower()
        names = ref.get("column_name_alias") or []
        if kind == "BASE_TABLE":
            table = str(ref.get("table_name") or "").lower()
            rel = ctes.get(table) or self.inputs.get(table) or self.unknown
            return [_Binding(alias or table, rel.renamed(names))]
        if kind == "SUBQUERY":
            rel = self.node((ref.get("subquery") or {}).get("node"), ctes, outer)
            return [_Binding(alias or "unnamed_subquery", rel.renamed(names))]
        if kind == "JOIN":
            left = self._from(ref.get("left"), ctes, outer)
            # the right side may be LATERAL: it sees the left side's columns
            right = self._from(ref.get("right"), ctes, _Scope(left, outer, ctes))
            return _joined(left, right, ref)
        scope = _Scope([], outer, ctes)
        if kind == "EXPRESSION_LIST":  # VALUES (...), (...)
            rows = ref.get("values") or []
            width = max((len(row) for row in rows), default=0)
            cols = tuple(
                _Col(f"col{i}", _merge(*(self.expr(r[i], scope) for r in rows if i < len(r))))
                for i in range(width)
            )
            return [_Binding(alias or "valueslist", _Rel(cols).renamed(names))]
        if kind == "TABLE_FUNCTION":
            function = ref.get("function") or {}
            called = str(function.get("function_name") or "").lower()
            rel = self.unknown
            if called in ROW_SOURCES:
                rel = _Rel((), False, self.expr(function.get("arguments"), scope))
            return [_Binding(alias or called, rel.renamed(names))]
        if kind == "PIVOT":  # its columns are named by data: any may hold any source column
            source = self._from(ref.get("source"), ctes, outer)
            rest = _merge(*(b.rel.every() for b in source))
            return [_Binding(alias or "pivot", _Rel((), False, rest).renamed(names))]
        if kind == "SHOW_REF" and isinstance(ref.get("query"), Mapping):  # SUMMARIZE shows values
            shown = self.node(ref.get("query"), ctes, outer)
            return [_Binding(alias, _Rel((), False, shown.every()))]
        return [_Binding(alias, self.unknown.renamed(names))]

    # -- expressions --------------------------------------------------------------------------
    def expr(self, node: Any, scope: _Scope) -> Tags:
        """Every input column `node` references, with its tag and use (see `trace`)."""
        found: list[Source] = []
        self._walk(node, scope, found)
        return _merge(found)

    def _walk(self, node: Any, scope: _Scope, found: list[Source]) -> None:
        if isinstance(node, list):
            for item in node:
                self._walk(item, scope, found)
            return
        if not isinstance(node, Mapping):
            return
        if node.get("class") == "COLUMN_REF":  # as it is: an identity (or what it was made of)
            parts = [str(p).lower() for p in node.get("column_names") or []]
            if parts:
                found.extend(self._resolve(parts, scope))
            else:
                found.extend(_at_least(scope.every(), TRANSFORMATION))
            return
        level = TRANSFORMATION
        if node.get("class") in ("FUNCTION", "WINDOW", "AGGREGATE"):
            called = str(node.get("function_name") or "").lower()
            if called in COUNTING:  # the counted columns are used, their values not shown
                counted: list[Source] = []
                self._walk(node.get("arguments"), scope, counted)
                found.extend(s._replace(tag=None, kind=AGGREGATION) for s in counted)
                return
            if called in self.aggregates:
                level = AGGREGATION
        inner: list[Source] = []
        self._inside(node, scope, inner)
        found.extend(_at_least(inner, level))

    def _inside(self, node: Mapping[str, Any], scope: _Scope, found: list[Source]) -> None:
        """The columns an expression other than a plain column reference draws on."""
        kind = node.get("class")
        star = kind in ("FUNCTION", "WINDOW", "AGGREGATE") and not node.get("arguments")
        if star and self._star_call(node):  # hash(*): every column
            found.extend(scope.every())
        if kind == "SUBQUERY":
            inner = self.node((node.get("subquery") or {}).get("node"), scope.ctes, scope)
            found.extend(inner.every())
            self._walk(node.get("child"), scope, found)
            return
        if kind == "STAR":  # inside an expression: struct_pack(*), upper(COLUMNS(*)), ...
            cols, _, rest = self._star(node, scope)
            found.extend(_merge(*(col.tags for col in cols), rest))
            return
        if kind == "LAMBDA":
            names: list[str] = []
            _column_names(node.get("lhs"), names)
            body = _Scope([], scope, scope.ctes, params=frozenset(names))
            self._walk(node.get("expr"), body, found)
            return
        if kind == "POSITIONAL_REFERENCE":  # #1: a column of the FROM clause
            found.extend(scope.every())
            return
        for value in node.values():  # any other kind: every column it references
            if isinstance(value, Mapping | list):
                self._walk(value, scope, found)

    def _star_call(self, node: Mapping[str, Any]) -> bool:
        """Whether a call without arguments in the tree is `f(*)` in the query's text."""
        at, length = node.get("query_location"), node.get("query_location_length")
        if not isinstance(at, int) or not isinstance(length, int) or at >= len(self.text):
            return False
        call = self.text[at : at + length]
        return b"*" in call.partition(b"(")[2].rpartition(b")")[0]

    def _resolve(self, parts: list[str], scope: _Scope) -> Tags:
        """The tags of a column reference: the nearest scope where it surely resolves (with
        the unknown relations passed on the way, which may hold it); failing that, every tag
        those unknown relations may carry; failing that, every tag in sight."""
        maybe: list[Tags] = []
        current: _Scope | None = scope
        while current is not None:
            sure, unknown = current.find(parts)
            maybe.extend(unknown)
            if sure is not None:
                return _merge(sure, *maybe)
            current = current.outer
        if maybe:
            return _merge(*maybe)
        return scope.every() if scope.sees_any() else self.all


def _union(rels: list[_Rel], *, by_name: bool = False) -> _Rel:
    """The columns of a set operation (UNION, EXCEPT, INTERSECT): position by position, or by
    name for UNION BY NAME; each with the tags of every part."""
    if not rels:
        return _Rel((), False)
    exact = all(rel.exact for rel in rels)
    if by_name and all(col.name for rel in rels for col in rel.cols):
        names = list(dict.fromkeys(col.name for rel in rels for col in rel.cols))
        cols = tuple(
            _Col(n, _merge(*(rel.lookup(n)[0] or () for rel in rels)))
            for n in names
            if n is not None
        )
        return _Rel(cols) if exact else _Rel(cols, False, _merge(*(r.every() for r in rels)))
    first = rels[0]
    if exact and not by_name and len({len(rel.cols) for rel in rels}) == 1:
        return _Rel(
            tuple(
                _Col(col.name, _merge(*(rel.cols[i].tags for rel in rels)))
                for i, col in enumerate(first.cols)
            )
        )
    every = _merge(*(rel.every() for rel in rels))
    return _Rel(tuple(_Col(col.name, every) for col in first.cols), False, every)


def _joined(left: list[_Binding], right: list[_Binding], join: Mapping[str, Any]) -> list[_Binding]:
    """The bindings of a join. USING and NATURAL joins show each shared column once: on the
    left, with the tags of both sides."""
    shared = {str(c).lower() for c in join.get("using_columns") or []}
    if join.get("ref_type") == "NATURAL":
        names_left = {col.name for b in left for col in b.rel.cols if col.name}
        shared |= {c.name for b in right for c in b.rel.cols if c.name and c.name in names_left}
    if not shared:
        return left + right
    from_right: dict[str, Tags] = {}
    for b in right:
        for col in b.rel.cols:
            if col.name in shared:
                from_right[col.name] = _merge(from_right.get(col.name, ()), col.tags)
    merged = [
        _Binding(
            b.alias,
            _Rel(
                tuple(
                    _Col(c.name, _merge(c.tags, from_right.get(c.name or "", ())))
                    for c in b.rel.cols
                ),
                b.rel.exact,
                b.rel.rest,
            ),
            b.hidden,
        )
        for b in left
    ]
    return merged + [_Binding(b.alias, b.rel, b.hidden | frozenset(shared)) for b in right]


def _expands(node: Any) -> bool:
    """Whether an expression holds COLUMNS(...), so stands for one column per match."""
    if isinstance(node, list):
        return any(_expands(item) for item in node)
    if not isinstance(node, Mapping) or node.get("class") == "SUBQUERY":
        return False
    if node.get("class") == "STAR" and (node.get("columns") or node.get("expr") is not None):
        return True
    return any(_expands(v) for v in node.values() if isinstance(v, Mapping | list))


def _column_names(node: Any, out: list[str]) -> None:
    """The names of every column reference in `node` (a lambda's parameters)."""
    if isinstance(node, list):
        for item in node:
            _column_names(item, out)
    elif isinstance(node, Mapping):
        if node.get("class") == "COLUMN_REF":
            out.extend(str(p).lower() for p in node.get("column_names") or [])
        else:
            for value in node.values():
                _column_names(value, out)
