"""``kernelkit locate``: fit a fingerprint radio map, then locate observations.

``locate fit RADIOMAP --positions-cols x,y --out model.npz`` stores the radio
map (RSS columns, positions, optional floor / building / location columns) and
the localizer's parameters in a .npz file (plain arrays, loadable without
pickle); ``locate predict model.npz OBS --out est.csv`` refits the localizer
from it (deterministic) and writes one estimated position (and floor,
building) per row of OBS. The RSS columns are every numeric column that is not
a position, floor, building or location column, unless ``--rss-cols`` names
them; OBS must have the same RSS columns (matched by name when both files have
a header, else by position).
"""

from __future__ import annotations

import json
import time

import numpy as np

from ._io import read_points, require_matplotlib, resolve_columns, write_array
from .._validation import param_error
from ..exceptions import InvalidValueError

_FORMAT = "kernelkit-locate-1"


def _auto_or_float(option):
    def parse(text):
        if text == "auto":
            return text
        try:
            return float(text)
        except ValueError:
            raise param_error(option, None, "a float or 'auto'", text, noun="option") from None
    return parse


def register(sub):
    p = sub.add_parser("locate", help="indoor positioning from RSS fingerprints (fit, predict)",
                       description="Locate phones from the received signal strengths of beacons / access "
                                   "points: fit a radio map of fingerprints at known positions, then estimate "
                                   "the position (floor, building) of new readings by kernel top-k similarity.")
    verbs = p.add_subparsers(dest="locate_verb", metavar="<fit|predict>")
    f = verbs.add_parser("fit", help="store a radio map and the localizer's parameters",
                         description="Read a radio map (one reading per row: RSS columns and the position where "
                                     "it was taken) and write a model file for 'locate predict'.")
    f.add_argument("radiomap", metavar="RADIOMAP", help="radio map table (CSV, .npy, .npz, .parquet)")
    f.add_argument("--positions-cols", required=True, metavar="COLS",
                   help="the 2 or 3 position columns (names or 0-based indices), e.g. LONGITUDE,LATITUDE")
    f.add_argument("--floor-col", default=None, metavar="COL", help="floor label column (optional)")
    f.add_argument("--building-col", default=None, metavar="COL", help="building label column (optional)")
    f.add_argument("--group-col", default=None, metavar="COL",
                   help="location id column (readings at one place), for --beacon-selection fisher "
                        "(default: one location per distinct position)")
    f.add_argument("--rss-cols", default=None, metavar="COLS",
                   help="RSS columns (default: every other numeric column)")
    f.add_argument("--k", type=int, default=10, help="neighbours (default 10)")
    f.add_argument("--kernel", default="laplace", help="weight kernel name (default laplace)")
    f.add_argument("--bandwidth", type=_auto_or_float("--bandwidth"), default="auto",
                   help="kernel bandwidth in units of the distance, or auto (default)")
    f.add_argument("--metric", default="auto", help="sorensen (default for kernels by name), l1, euclidean")
    f.add_argument("--weights", default="kernel", help="kernel (default), uniform (kNN), distance (1/d)")
    f.add_argument("--representation", default="powed", help="raw, positive, exponential, powed (default)")
    f.add_argument("--not-heard", type=_auto_or_float("--not-heard"), default="auto",
                   help="marker of 'not heard' in the RSS columns (e.g. 100 or -200; default auto: any value "
                        "> 0 or <= --fill)")
    f.add_argument("--fill", type=float, default=-110.0, help="dBm given to 'not heard' (default -110)")
    f.add_argument("--beacon-selection", default="none", help="none (default) or fisher")
    f.add_argument("--n-beacons", type=float, default=None,
                   help="beacons kept by fisher selection: a count (>= 1) or a fraction in (0, 1)")
    f.add_argument("--flat", action="store_true", help="no building -> floor -> position hierarchy")
    f.add_argument("--out", required=True, help="model file (.npz)")
    f.add_argument("--quiet", action="store_true", help="print nothing but errors")
    f.set_defaults(run=run_fit)
    q = verbs.add_parser("predict", help="locate observations with a fitted model",
                         description="Estimate the position (and floor, building) of every row of OBS.")
    q.add_argument("model", metavar="MODEL", help="model file written by 'locate fit'")
    q.add_argument("obs", metavar="OBS", help="observations: a table with the radio map's RSS columns")
    q.add_argument("--positions-cols", default=None, metavar="COLS",
                   help="true position columns of OBS, when known: errors are reported and plotted")
    q.add_argument("--out", default=None, help="estimates (CSV with header, .npy, .npz, .parquet)")
    q.add_argument("--plot", default=None, metavar="PNG",
                   help="map of the radio map's positions, the estimates and (if known) the true positions")
    q.add_argument("--unheard", default="raise", help="readings hearing no beacon: raise (default) or prior "
                                                       "(mean map position, most frequent floor / building)")
    q.add_argument("--quiet", action="store_true", help="print nothing but errors")
    q.set_defaults(run=run_predict)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _one(spec, names, n_columns, what, option):
    if spec is None:
        return None
    cols = resolve_columns(spec, names, n_columns, what, option)
    if len(cols) != 1:
        raise param_error(option, None, "one column", spec, noun="option")
    return cols[0]


def run_fit(args):
    say = (lambda *a: None) if args.quiet else print
    table, names, ignored = read_points(args.radiomap, "RADIOMAP")
    what = f"RADIOMAP ({args.radiomap!r})"
    ncol = table.shape[1]
    pcols = resolve_columns(args.positions_cols, names, ncol, what, "--positions-cols")
    if len(pcols) not in (2, 3):
        raise param_error("--positions-cols", None, "2 or 3 columns", args.positions_cols, noun="option",
                          shown=f"{len(pcols)} columns")
    fcol = _one(args.floor_col, names, ncol, what, "--floor-col")
    bcol = _one(args.building_col, names, ncol, what, "--building-col")
    gcol = _one(args.group_col, names, ncol, what, "--group-col")
    used = set(pcols) | {c for c in (fcol, bcol, gcol) if c is not None}
    if args.rss_cols is not None:
        rcols = resolve_columns(args.rss_cols, names, ncol, what, "--rss-cols")
        clash = sorted(set(rcols) & used)
        if clash:
            raise param_error("--rss-cols", None, "columns other than the position / label columns",
                              args.rss_cols, noun="option", shown=f"{[names[j] if names else j for j in clash]}")
    else:
        rcols = [j for j in range(ncol) if j not in used]
    if not rcols:
        raise InvalidValueError(f"RADIOMAP: {args.radiomap!r} has no RSS column left besides the position and "
                                "label columns")
    sel = args.beacon_selection.lower()
    if sel not in ("none", "fisher"):
        raise param_error("--beacon-selection", None, "none or fisher", args.beacon_selection, noun="option")
    nb = args.n_beacons
    if nb is not None and nb >= 1:
        if nb != int(nb):
            raise param_error("--n-beacons", None, "an int >= 1 or a fraction in (0, 1)", nb, noun="option")
        nb = int(nb)
    params = dict(kernel=args.kernel.lower(), bandwidth=args.bandwidth, k=args.k, weights=args.weights,
                  metric=args.metric, representation=args.representation, not_heard=args.not_heard,
                  fill=args.fill, beacon_selection=None if sel == "none" else "fisher", n_beacons=nb,
                  hierarchical=not args.flat)
    arrays = dict(rss=table[:, rcols], positions=table[:, pcols],
                  floor=None if fcol is None else table[:, fcol], building=None if bcol is None else table[:, bcol],
                  groups=None if gcol is None else table[:, gcol])
    from ..localization import _localizer  # noqa: F401  (imported before the clock starts)
    t0 = time.perf_counter()
    model = _fit(params, arrays)
    t_fit = time.perf_counter() - t0
    rss_names = [names[j] for j in rcols] if names else []
    pos_names = [names[j] for j in pcols] if names else [f"x{j}" for j in range(len(pcols))]
    meta = {"format": _FORMAT, "params": params, "rss_columns": rss_names, "position_columns": pos_names}
    np.savez(args.out, meta=np.array(json.dumps(meta)),
             **{key: np.asarray(val, dtype=np.float64) for key, val in arrays.items() if val is not None})
    say(f"kernelkit locate fit: {table.shape[0]:,} readings x {len(rcols)} RSS columns from {args.radiomap}")
    if ignored:
        say(f"   ignored non-numeric columns: {', '.join(ignored)}")
    labels = [nm for nm, c in (("floor", fcol), ("building", bcol)) if c is not None]
    say(f"   {len(model.beacons_)} beacons used ({'fisher selection' if sel == 'fisher' else 'heard in the map'}); "
        f"metric {model.metric_}, kernel {model.kernel_!r}, k = {model.k}"
        + (f"; labels: {', '.join(labels)}" if labels else "") + f"; fit {t_fit:.2f} s")
    say(f"   wrote {args.out}")
    return 0


def _fit(params, arrays):
    from ..localization import FingerprintLocalizer
    model = FingerprintLocalizer(**params)
    def lab(key):
        v = arrays.get(key)
        if v is None:
            return None
        v = np.asarray(v)
        if not (np.isfinite(v).all() and (v == np.round(v)).all()):
            raise InvalidValueError(f"the {key} column must hold integer labels")
        return v.astype(np.int64)
    return model.fit(arrays["rss"], arrays["positions"], floor=lab("floor"), building=lab("building"),
                     groups=arrays.get("groups"))


def load_model(path, all_unheard="raise"):
    """(fitted FingerprintLocalizer, meta dict) from a ``locate fit`` model file."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidValueError(f"MODEL: {path!r} is not a model file written by 'kernelkit locate fit' ({exc})") \
            from None
    with z:
        if "meta" not in z.files:
            raise InvalidValueError(f"MODEL: {path!r} is not a model file written by 'kernelkit locate fit'")
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != _FORMAT:
            raise InvalidValueError(f"MODEL: {path!r} has format {meta.get('format')!r}, expected {_FORMAT!r}")
        arrays = {key: z[key] for key in z.files if key != "meta"}
    params = dict(meta["params"], all_unheard=all_unheard)
    return _fit(params, arrays), meta, arrays


def run_predict(args):
    if args.plot:
        require_matplotlib()
    say = (lambda *a: None) if args.quiet else print
    unheard = args.unheard.lower()
    if unheard not in ("raise", "prior"):
        raise param_error("--unheard", None, "raise or prior", args.unheard, noun="option")
    model, meta, arrays = load_model(args.model, unheard)
    table, names, ignored = read_points(args.obs, "OBS")
    what = f"OBS ({args.obs!r})"
    truth_cols = (resolve_columns(args.positions_cols, names, table.shape[1], what, "--positions-cols")
                  if args.positions_cols else [])
    rss_names = meta["rss_columns"]
    if rss_names and names:
        missing = [c for c in rss_names if c not in names]
        if missing:
            raise InvalidValueError(f"OBS: {args.obs!r} lacks {len(missing)} of the radio map's RSS columns, e.g. "
                                    f"{missing[:5]}")
        rcols = [names.index(c) for c in rss_names]
    else:
        rcols = [j for j in range(table.shape[1]) if j not in truth_cols]
        if len(rcols) != model.n_beacons_in_:
            raise InvalidValueError(f"OBS: {args.obs!r} has {len(rcols)} RSS columns (besides --positions-cols); "
                                    f"the radio map has {model.n_beacons_in_}")
    t0 = time.perf_counter()
    loc = model.locate(table[:, rcols])
    t_pred = time.perf_counter() - t0
    pos_names = meta["position_columns"]
    cols = [np.asarray(loc.positions)]
    out_names = list(pos_names)
    for nm, lab in (("floor", loc.floor), ("building", loc.building)):
        if lab is not None:
            cols.append(lab[:, None].astype(np.float64))
            out_names.append(nm)
    say(f"kernelkit locate predict: {table.shape[0]:,} observations from {args.obs}; {t_pred:.2f} s")
    if loc.fallback.any():
        say(f"   {int(loc.fallback.sum())} observation(s) heard no beacon: mean map position (--unheard prior)")
    if truth_cols:
        truth = table[:, truth_cols]
        if truth.shape[1] != loc.positions.shape[1]:
            raise param_error("--positions-cols", None, f"{loc.positions.shape[1]} columns like the model's "
                              "positions", args.positions_cols, noun="option", shown=f"{truth.shape[1]} columns")
        e = np.sqrt(((loc.positions - truth) ** 2).sum(axis=1))
        say(f"   error: mean {e.mean():.3f}, median {np.median(e):.3f}, P90 {np.percentile(e, 90):.3f} "
            "(units of the positions)")
    else:
        truth = None
    if args.out:
        write_array(args.out, np.hstack(cols), out_names)
        say(f"   wrote {args.out}")
    if args.plot:
        _plot(args.plot, arrays["positions"], loc.positions, truth, pos_names)
        say(f"   wrote {args.plot}")
    return 0


def _plot(path, radiomap, est, truth, names):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(radiomap[:, 0], radiomap[:, 1], s=4, c="0.75", label="radio map", rasterized=True)
    if truth is not None:
        ax.plot(np.stack([truth[:, 0], est[:, 0]]), np.stack([truth[:, 1], est[:, 1]]), color="tab:red",
                lw=0.5, alpha=0.6)
        ax.scatter(truth[:, 0], truth[:, 1], s=10, c="tab:green", label="true")
    ax.scatter(est[:, 0], est[:, 1], s=10, c="tab:blue", marker="x", label="estimated")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def demo_step(args):
    """Locate phones in a synthetic two-floor building held in new orientations: kNN, weighted kNN, kernel."""
    from ..datasets import make_building
    from ..localization import FingerprintLocalizer, positioning_errors
    data = make_building(grid=(10, 6), n_floors=2, n_beacons=10, n_sensitive=4, sensitive_body_loss=20.0,
                         random_state=args.seed)
    hold = data.meta["holding"]
    tr, te = np.isin(hold, (0, 2)), np.isin(hold, (1, 3))
    print(f"   synthetic building: {data.rss.shape[1]} beacons ({int(data.info['sensitive'].sum())} holding-"
          f"sensitive), 2 floors of 10 x 6 points, 2 m grid; map: phone facing +x / -x "
          f"({int(tr.sum())} readings), queries: facing +y / -y ({int(te.sum())})")
    from ..localization import grouped_cv_search
    t0 = time.perf_counter()
    base = FingerprintLocalizer(k=5)
    auto = base.fit(data.rss[tr], data.positions[tr]).bandwidth_
    search = grouped_cv_search(base, data.rss[tr], data.positions[tr],
                               {"bandwidth": [auto / 16, auto / 4, auto]}, groups=data.groups[tr], n_splits=3,
                               refit=False)
    bw = search.best_params["bandwidth"]
    print(f"   kernel bandwidth by 3-fold CV grouped by location, on the map only: {bw:.4g} (Bray-Curtis units; "
          f"auto rule {auto:.4g}; {time.perf_counter() - t0:.2f} s)")
    rows = [("kNN, k = 5", dict(k=5, weights="uniform", hierarchical=False)),
            ("weighted kNN (1/d), k = 5", dict(k=5, weights="distance", hierarchical=False)),
            ("kernel top-k, k = 5", dict(k=5, bandwidth=bw)),
            ("kernel top-k + fisher beacon selection", dict(k=5, bandwidth=bw, beacon_selection="fisher",
                                                            n_beacons=16))]
    for name, kw in rows:
        t0 = time.perf_counter()
        model = FingerprintLocalizer(**kw).fit(data.rss[tr], data.positions[tr], floor=data.floor[tr],
                                               groups=data.groups[tr])
        loc = model.locate(data.rss[te])
        s = positioning_errors(loc.positions, data.positions[te], loc.floor, data.floor[te])
        print(f"   {name:<40s} mean {s['mean']:.2f} m, P90 {s['p90']:.2f} m, floor {100 * s['floor_hit']:.1f}% "
              f"({time.perf_counter() - t0:.2f} s)")
