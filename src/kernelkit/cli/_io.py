"""Reading and writing point sets for the CLI.

Formats: CSV / text tables, .npy, .npz (first array, or ``file.npz:key``),
.parquet (needs pyarrow), posteriordb draws (``.json`` or ``.json.zip``: a
list of chains, each a dict parameter -> list of draws).

CSV / text tables (any other file name) follow these rules:

* **Delimiter**: comma, semicolon or tab, detected from the first lines
  (:func:`sniff_delimiter`): the one that splits every sampled line into the
  same number (> 1) of fields; if several do, tab wins over semicolon over
  comma (commas also occur inside fields, e.g. as decimal commas); if none
  does, the one splitting the first line most; a file none of them splits is
  one column. One record per line; fields may be quoted with ``"``.
* **Header**: the first line is a header when it has a non-empty field that
  is not a number and, in that same column, a later sampled line has a
  number (a one-line file: when none of its fields is a number). A first line
  ``# a,b`` (``numpy.savetxt``'s header) is a header when it has as many
  fields as the first data row. Other lines starting with ``#`` and blank
  lines are skipped. A header can only be told from data this way: names that
  all look like numbers, or that sit only above text columns
  (``country,2015`` over ``France,1.5``), are read as a data row.
* **Columns**: with ``columns`` (``--columns``), exactly those, which must be
  numbers in every row. Without it, every column with a number among its first
  :data:`SAMPLE_ROWS` data rows is used and the others (text labels, ids,
  dates, empty columns) are ignored; :class:`Points` lists them so the verb can
  say so. A used column must then hold a number in every row: an empty cell or
  text is an error naming the file's line (1-based) and the column.

A column is chosen by name or 0-based index (:func:`resolve_columns`): a name
found in the header is that column, even when it looks like a number
(``2015``); otherwise a non-negative integer is an index. Files without column
names (.npy, .npz, headerless CSV) take indices only.
"""

from __future__ import annotations

import csv
import json
import os
import re
import zipfile
from typing import NamedTuple

import numpy as np

from .._validation import OneOf, param_error
from ..exceptions import InvalidValueError

#: candidate CSV delimiters, in order of preference when several fit
DELIMITERS = ("\t", ";", ",")
#: data rows looked at to detect the delimiter, the header and the numeric columns
SAMPLE_ROWS = 100
#: column names listed in an error message before it says "..."
_MAX_LISTED = 20


class Points(NamedTuple):
    """What :func:`read_points` returns.

    Attributes
    ----------
    data : ndarray of shape (n, d)
        The points, float64 (float32 arrays stay float32).
    columns : list of str or None
        Names of the ``d`` columns of ``data``, or None when the file has none.
    ignored : list of str
        Labels of the non-numeric columns left out because no ``columns`` were
        given (names, or ``"column 3"`` without a header); empty otherwise.
    """

    data: np.ndarray
    columns: list | None
    ignored: list


def parse_columns(text, option="--columns"):
    """Split a ``--columns`` value ``"a,b"`` or ``"0,2"`` into its tokens.

    Parameters
    ----------
    text : str or None
        Comma-separated column names and/or 0-based indices.
    option : str
        Option name used in error messages.

    Returns
    -------
    list of str or None
        The stripped tokens (None for None). Whether a token is a name or an
        index is decided against the file's header by :func:`resolve_columns`.
    """
    if text is None:
        return None
    tokens = [t.strip() for t in str(text).split(",")]
    if not tokens or any(t == "" for t in tokens):
        raise param_error(option, None, "comma-separated column names or 0-based indices, e.g. 'a,b' or '0,2'",
                          text, noun="option")
    return tokens


def check_kernel_name(text, option="--kernel", extra=()):
    """A radial kernel name given on the command line (lower-cased), or the one-line error naming ``option``.

    ``extra`` adds names the verb accepts besides kernels (``'l1'``, ``'l2'`` for distance sums).
    """
    from ..kernels import KERNEL_NAMES
    accepted = OneOf(*[n for n in KERNEL_NAMES if n not in ("linear", "polynomial")], *extra)
    if not accepted.value_ok(text.lower()):
        raise param_error(option, None, str(accepted), text, noun="option")
    return text.lower()


def column_label(names, j):
    """How column ``j`` is named in messages: ``'species'`` or ``column 2``."""
    return repr(names[j]) if names else f"column {j}"


def _accepted(names, n_columns):
    if n_columns == 0:
        return "it has no columns"
    indices = f"0-based indices 0 to {n_columns - 1}"
    if not names:
        return f"{indices} (it has no column names)"
    shown = ", ".join(names[:_MAX_LISTED]) + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")
    return f"names {shown} or {indices}"


def resolve_columns(spec, names, n_columns, what, option="--columns"):
    """Turn column names / indices into 0-based column indices.

    Parameters
    ----------
    spec : str or sequence of (str or int)
        ``"a,b"`` / ``"0,2"`` (see :func:`parse_columns`) or a list. An int is
        an index. A str is a name when the header has it, else an index when it
        is a non-negative integer, else an error.
    names : list of str or None
        Column names of the table (None: indices only).
    n_columns : int
        Number of columns of the table.
    what : str
        The table, for messages, e.g. ``"DATA ('x.csv')"``.
    option : str
        Option name for messages.

    Returns
    -------
    list of int
        The indices, in the order given; no column twice.
    """
    tokens = parse_columns(spec, option) if isinstance(spec, str) else list(spec)
    if not tokens:
        raise InvalidValueError(f"The '{option}' option must name at least one column of {what}: "
                                f"{_accepted(names, n_columns)}. Got none.")
    lookup = {}
    for j, nm in enumerate(names or []):
        lookup.setdefault(nm, j)
    out = []
    for tok in tokens:
        if isinstance(tok, (int, np.integer)) and not isinstance(tok, bool):
            j = int(tok)
        elif isinstance(tok, str) and tok.strip() in lookup:
            j = lookup[tok.strip()]
        elif isinstance(tok, str) and re.fullmatch(r"\d+", tok.strip()):
            j = int(tok.strip())
        else:
            j = None
        if j is None or not 0 <= j < n_columns:
            raise InvalidValueError(f"The '{option}' option must name columns of {what}: "
                                    f"{_accepted(names, n_columns)}. Got {tok!r}.")
        if j in out:
            raise InvalidValueError(f"The '{option}' option must name each column once. Got "
                                    f"{column_label(names, j)} (index {j}) twice.")
        out.append(j)
    return out


def _split_key(path):
    if ".npz:" in path:
        p, key = path.rsplit(":", 1)
        return p, key
    return path, None


def read_points(path, name="DATA", columns=None):
    """Read a 2-D table of points (rows = points) from a file.

    Parameters
    ----------
    path : str or path-like
        CSV / text table, .npy, .npz (``file.npz:key`` for one array),
        .parquet or posteriordb draws (.json, .json.zip).
    name : str
        What the file is on the command line (``"DATA"``, ``"--query"``), for
        messages.
    columns : str or sequence of (str or int), optional
        The columns to read, by name or 0-based index (see the module
        docstring). Default: every column of an array; the numeric columns of
        a CSV or Parquet table, the others being listed in ``ignored``.

    Returns
    -------
    Points
        ``(data, columns, ignored)``.
    """
    path = str(path)
    file, key = _split_key(path)
    if not os.path.exists(file):
        raise FileNotFoundError(f"{name}: no such file {file!r}")
    what = f"{name} ({file!r})"
    low = file.lower()
    ignored = []
    if low.endswith(".npy"):
        arr, cols = np.load(file, allow_pickle=False), None
    elif low.endswith(".npz"):
        with np.load(file, allow_pickle=False) as z:
            keys = list(z.keys())
            if not keys:
                raise InvalidValueError(f"{name}: {file!r} holds no arrays")
            if key is not None and key not in keys:
                raise InvalidValueError(f"{name}: {file!r} has no array {key!r}; it has {keys}")
            arr, cols = z[key or keys[0]], None
    elif low.endswith(".parquet"):
        return _read_parquet(file, name, columns)
    elif low.endswith(".json") or low.endswith(".json.zip"):
        arr, cols = read_posteriordb(file)
    else:
        return _read_csv(file, name, columns)
    arr = np.asarray(arr)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidValueError(f"{name}: expected a 2-D table of points, got an array of shape {arr.shape}")
    if columns is not None:
        sel = resolve_columns(columns, cols, arr.shape[1], what)
        arr = arr[:, sel]
        cols = [cols[j] for j in sel] if cols else None
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    return Points(arr, cols, ignored)


def _read_parquet(file, name, columns):
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidValueError(f"{name}: reading Parquet needs pyarrow (pip install 'kernelkit[parquet]')") from None
    table = pq.read_table(file)
    names = list(table.column_names)
    types = [table.schema.field(j).type for j in range(len(names))]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in types]
    if columns is not None:
        sel, ignored = resolve_columns(columns, names, len(names), f"{name} ({file!r})"), []
        for j in sel:
            if not numeric[j]:
                raise InvalidValueError(f"{name}: {file!r} {_where(names, j)} holds {types[j]}, not numbers")
    else:
        sel = [j for j in range(len(names)) if numeric[j]]
        ignored = [names[j] for j in range(len(names)) if not numeric[j]]
        if not sel:
            raise InvalidValueError(f"{name}: {file!r} has no numeric column; its columns are "
                                    f"{', '.join(f'{c} ({t})' for c, t in zip(names, types))}")
    blocks = []
    for j in sel:
        col = table.column(j)
        if col.null_count:
            row = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
            raise InvalidValueError(f"{name}: {file!r} row {row + 1}, {_where(names, j)}: missing value (null)")
        blocks.append(col.to_numpy(zero_copy_only=False).astype(np.float64))
    arr = np.column_stack(blocks) if table.num_rows else np.empty((0, len(sel)))
    return Points(arr, [names[j] for j in sel], ignored)


def _where(names, j):
    return f"column {names[j]!r} (index {j})" if names else f"column index {j}"


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _content_lines(fh):
    """Yield ``(line number, line)`` of a text file, skipping blank lines and ``#`` comments."""
    for lineno, line in enumerate(fh, 1):
        s = line.strip()
        if s and not s.startswith("#"):
            yield lineno, line


def _fields(line, delimiter):
    row = next(csv.reader([line], delimiter=delimiter), [])
    return [f.strip() for f in row]


def sniff_delimiter(lines):
    """The delimiter of a table: comma, semicolon or tab (rules in the module docstring).

    Parameters
    ----------
    lines : list of str
        The first non-blank, non-comment lines of the file (header included).

    Returns
    -------
    str
        ``","``, ``";"`` or ``"\\t"``; ``","`` for a one-column file.
    """
    counts = {d: [len(_fields(line, d)) for line in lines] for d in DELIMITERS}
    for d in DELIMITERS:
        if counts[d][0] > 1 and len(set(counts[d])) == 1:
            return d
    best = max(DELIMITERS, key=lambda d: counts[d][0])
    return best if counts[best][0] > 1 else ","


def _has_header(rows):
    """Whether ``rows[0]`` is a header (rule in the module docstring)."""
    first, rest = rows[0], rows[1:]
    text = [j for j, f in enumerate(first) if f and not _is_number(f)]
    if not text:
        return False
    if not rest:
        return not any(_is_number(f) for f in first)
    return any(j < len(r) and _is_number(r[j]) for j in text for r in rest)


def _read_csv(file, name, columns):
    with open(file, "r", encoding="utf-8-sig") as fh:
        first_line = fh.readline()
        fh.seek(0)
        sample = []
        for item in _content_lines(fh):
            sample.append(item)
            if len(sample) > SAMPLE_ROWS:
                break
    if not sample:
        raise InvalidValueError(f"{name}: {file!r} is empty")
    delimiter = sniff_delimiter([line for _, line in sample])
    rows = [_fields(line, delimiter) for _, line in sample]
    names, header_line = None, None
    if _has_header(rows):
        names, header_line, rows = rows[0], sample[0][0], rows[1:]
    elif first_line.lstrip().startswith("#"):  # numpy.savetxt's "# a,b" header
        candidate = _fields(first_line.lstrip()[1:], delimiter)
        if len(candidate) == len(rows[0]) and _has_header([candidate] + rows):
            names = candidate
    if not rows:
        raise InvalidValueError(f"{name}: {file!r} has a header but no rows")
    n_fields = len(names) if names else len(rows[0])
    auto = columns is None
    if auto:
        numeric = [any(j < len(r) and _is_number(r[j]) for r in rows) for j in range(n_fields)]
        sel = [j for j in range(n_fields) if numeric[j]]
        ignored = [names[j] if names else f"column {j}" for j in range(n_fields) if not numeric[j]]
        if not sel:
            raise InvalidValueError(f"{name}: {file!r} has no numeric column: none of its first {len(rows)} data "
                                    f"rows has a number in any of its {n_fields} columns")
    else:
        sel, ignored = resolve_columns(columns, names, n_fields, f"{name} ({file!r})"), []
    try:
        with open(file, "r", encoding="utf-8-sig") as fh:
            lines = (line for lineno, line in _content_lines(fh) if lineno != header_line)
            arr = np.loadtxt(lines, delimiter=delimiter, usecols=sel, quotechar='"', comments=None, ndmin=2,
                             dtype=np.float64)
    except ValueError as exc:
        _raise_bad_cell(file, name, delimiter, header_line, sel, names, auto)
        raise InvalidValueError(f"{name}: {file!r} is not a numeric table ({exc})") from None
    return Points(arr, [names[j] for j in sel] if names else None, ignored)


def _raise_bad_cell(file, name, delimiter, header_line, sel, names, auto):
    """Find the first cell of a used column that is not a number and raise an error naming it."""
    hint = (f" (without --columns, every column with a number in its first {SAMPLE_ROWS} data rows is used; "
            "--columns chooses the columns)") if auto else ""
    with open(file, "r", encoding="utf-8-sig") as fh:
        for lineno, line in _content_lines(fh):
            if lineno == header_line:
                continue
            fields = _fields(line, delimiter)
            for j in sel:
                where = f"{name}: {file!r} line {lineno}, {_where(names, j)}"
                if j >= len(fields):
                    raise InvalidValueError(f"{where}: missing, the line has only {len(fields)} fields")
                if not fields[j]:
                    raise InvalidValueError(f"{where}: empty cell; every used column needs a number in every "
                                            f"row{hint}")
                if not _is_number(fields[j]):
                    raise InvalidValueError(f"{where}: {fields[j]!r} is not a number{hint}")


def require_matplotlib(option="--plot"):
    """Raise a one-line :class:`InvalidValueError` unless matplotlib can be imported.

    Call it before any work starts, so that a missing plotting library does
    not end a long run after its results were written.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidValueError(f"{option} needs matplotlib: pip install 'kernelkit[plot]'") from None


def read_posteriordb(file):
    """posteriordb reference draws: list of chains, each {param: [draws]}.

    Returns the draws of all chains stacked (chain after chain), shape
    (n_chains * n_draws, n_params), and the parameter names.
    """
    if file.lower().endswith(".zip"):
        with zipfile.ZipFile(file) as zf:
            inner = [n for n in zf.namelist() if not n.endswith("/")]
            if not inner:
                raise InvalidValueError(f"DATA: {file!r} is an empty zip archive")
            with zf.open(inner[0]) as fh:
                chains = json.load(fh)
    else:
        with open(file, "r", encoding="utf-8") as fh:
            chains = json.load(fh)
    if isinstance(chains, dict):
        chains = [chains]
    if not isinstance(chains, list) or not chains or not isinstance(chains[0], dict):
        raise InvalidValueError(f"DATA: {file!r} is not in posteriordb's draw format (a list of chains, "
                         "each a dict parameter -> list of draws)")
    names = list(chains[0].keys())
    blocks = [np.column_stack([np.asarray(ch[p], dtype=float).ravel() for p in names]) for ch in chains]
    return np.vstack(blocks), names


def write_array(path, arr, columns=None):
    """Write a 1-D or 2-D array as CSV (with header), .npy or .npz (key 'data')."""
    path = str(path)
    arr = np.asarray(arr)
    low = path.lower()
    if low.endswith(".npy"):
        np.save(path, arr)
    elif low.endswith(".npz"):
        np.savez(path, data=arr)
    elif low.endswith(".parquet"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InvalidValueError("--out: writing Parquet needs pyarrow (pip install 'kernelkit[parquet]')") from None
        a2 = arr.reshape(arr.shape[0], -1)
        cols = columns or [f"c{i}" for i in range(a2.shape[1])]
        pq.write_table(pa.table({c: a2[:, i] for i, c in enumerate(cols)}), path)
    else:
        a2 = arr.reshape(arr.shape[0], -1)
        header = ",".join(columns) if columns else ""
        fmt = "%d" if np.issubdtype(a2.dtype, np.integer) else "%.17g"
        np.savetxt(path, a2, delimiter=",", header=header, comments="", fmt=fmt)
