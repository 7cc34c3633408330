"""A synthetic building of RSS fingerprints: path loss, shadowing, walls, floors and the user's body."""

from __future__ import annotations

import numpy as np

from .._random import generator
from .._validation import check_int, check_param, check_positive, param_error, Real
from ._indoor import FingerprintData

__all__ = ["make_building"]


def make_building(*, grid=(10, 8), spacing=2.0, n_floors=1, n_buildings=1, n_beacons=12, n_sensitive=3,
                  n_holdings=4, n_repeats=2, tx_power=-45.0, path_loss_exponent=2.5, wall_every=6.0,
                  wall_loss=4.0, floor_height=3.5, floor_loss=15.0, body_loss=1.0, sensitive_body_loss=15.0,
                  shadowing=3.0, noise=1.5, sensitivity=-100.0, not_heard=100.0, random_state=None):
    r"""RSS fingerprints of a synthetic building, with a holding-dependent body attenuation.

    Reference points lie on a ``grid`` with ``spacing`` metres on every floor
    of every building (buildings side by side along x, 20 m apart). At each
    point the phone is held in ``n_holdings`` orientations (the user faces
    angle :math:`\varphi_h = 2\pi h / H`), ``n_repeats`` readings each. The
    RSS of beacon :math:`j` at point :math:`x` in holding :math:`h` is, in dBm,

    .. math::

        P_0 - 10\,\eta \log_{10}\max(d_j, 1) - L_w\,w_j - L_f\,f_j
        - B_j\,\frac{1 - \cos(\psi_j - \varphi_h)}{2} + s_{xj} + \epsilon

    with :math:`d_j` the 3-D distance in metres, :math:`w_j` the walls
    (planes ``x = c * wall_every``) and :math:`f_j` the floors between phone
    and beacon, :math:`\psi_j` the direction to the beacon (the body, behind
    the phone, attenuates by up to :math:`B_j` when the beacon is behind the
    user), :math:`s_{xj} \sim N(0, \text{shadowing}^2)` fixed per point and
    beacon, and :math:`\epsilon \sim N(0, \text{noise}^2)` per reading.
    Readings below ``sensitivity`` are "not heard" (``not_heard``).

    The first ``n_sensitive`` beacons (in random places, like the others) have
    :math:`B_j` = ``sensitive_body_loss``, the others ``body_loss``: they are
    the beacons a selection for holding variability should drop first.

    Parameters
    ----------
    grid : (int, int)
        Reference points per floor along x and y.
    spacing : float > 0
        Grid step in metres.
    n_floors, n_buildings : int >= 1
        Floors per building and buildings.
    n_beacons : int >= 1
        Beacons per floor of every building (placed uniformly at random in it,
        at 2.5 m above the floor).
    n_sensitive : int in [0, n_beacons * n_floors * n_buildings]
        How many beacons (the first ones) are holding-sensitive.
    n_holdings, n_repeats : int >= 1
        Orientations of the phone per point, readings per orientation.
    tx_power : float
        :math:`P_0`, the RSS at 1 m, dBm.
    path_loss_exponent : float > 0
        :math:`\eta`.
    wall_every : float > 0
        Distance between walls, metres.
    wall_loss : float >= 0
        dB per wall crossed.
    floor_height : float > 0
        Metres per floor.
    floor_loss : float >= 0
        dB per floor crossed.
    body_loss, sensitive_body_loss : float >= 0
        :math:`B_j` in dB for ordinary and holding-sensitive beacons.
    shadowing, noise : float >= 0
        Standard deviations in dB.
    sensitivity : float
        Weakest RSS received, dBm.
    not_heard : float
        Marker written for readings below the sensitivity (default +100, as in UJIIndoorLoc).
    random_state : None, int, SeedSequence or Generator

    Returns
    -------
    FingerprintData
        ``rss`` (n, n_beacons * n_floors * n_buildings), ``positions`` (n, 2) in
        metres, ``floor`` and ``building`` labels, ``groups`` (one id per
        reference point), ``meta["holding"]`` (orientation index per row),
        ``info``: ``beacon_positions`` (3-D, metres), ``beacon_floor``,
        ``beacon_building``, ``sensitive`` (bool per beacon), ``body_loss``
        (dB per beacon).
    """
    owner = "make_building"
    if not (isinstance(grid, (tuple, list)) and len(grid) == 2):
        raise param_error("grid", owner, "a pair of ints >= 1 (points along x and y)", grid, kind="type")
    nx, ny = (check_int(g, "grid", owner, low=1) for g in grid)
    spacing = check_positive(spacing, "spacing", owner)
    n_floors = check_int(n_floors, "n_floors", owner, low=1)
    n_buildings = check_int(n_buildings, "n_buildings", owner, low=1)
    n_beacons = check_int(n_beacons, "n_beacons", owner, low=1)
    total = n_beacons * n_floors * n_buildings
    n_sensitive = check_int(n_sensitive, "n_sensitive", owner, low=0, high=total)
    n_holdings = check_int(n_holdings, "n_holdings", owner, low=1)
    n_repeats = check_int(n_repeats, "n_repeats", owner, low=1)
    tx_power = check_param(tx_power, "tx_power", owner, Real())
    eta = check_positive(path_loss_exponent, "path_loss_exponent", owner)
    wall_every = check_positive(wall_every, "wall_every", owner)
    floor_height = check_positive(floor_height, "floor_height", owner)
    wall_loss, floor_loss, body_loss, sensitive_body_loss, shadowing, noise = (
        check_positive(v, name, owner, allow_zero=True) for v, name in
        [(wall_loss, "wall_loss"), (floor_loss, "floor_loss"), (body_loss, "body_loss"),
         (sensitive_body_loss, "sensitive_body_loss"), (shadowing, "shadowing"), (noise, "noise")])
    sensitivity = check_param(sensitivity, "sensitivity", owner, Real())
    not_heard = check_param(not_heard, "not_heard", owner, Real())
    rng = generator(random_state, owner)

    width, depth = nx * spacing, ny * spacing
    gap = 20.0
    # reference points: (building, floor, x, y)
    gx, gy = np.meshgrid((np.arange(nx) + 0.5) * spacing, (np.arange(ny) + 0.5) * spacing, indexing="ij")
    pts = []
    for b in range(n_buildings):
        for f in range(n_floors):
            pts.append(np.column_stack([np.full(nx * ny, b), np.full(nx * ny, f),
                                        gx.ravel() + b * (width + gap), gy.ravel()]))
    pts = np.concatenate(pts)                                   # (P, 4)
    # beacons: n_beacons per floor of each building
    bb = np.repeat(np.arange(n_buildings), n_beacons * n_floors)
    bf = np.tile(np.repeat(np.arange(n_floors), n_beacons), n_buildings)
    bxy = rng.uniform([0.0, 0.0], [width, depth], size=(total, 2)) + np.column_stack([bb * (width + gap),
                                                                                      np.zeros(total)])
    bz = bf * floor_height + 2.5
    beacon_pos = np.column_stack([bxy, bz])
    B = np.full(total, body_loss)
    B[:n_sensitive] = sensitive_body_loss

    P = pts.shape[0]
    phone = np.column_stack([pts[:, 2:4], pts[:, 1] * floor_height + 1.2])        # (P, 3), phone at 1.2 m
    diff = beacon_pos[None, :, :] - phone[:, None, :]                            # (P, N, 3)
    dist = np.sqrt(np.sum(diff ** 2, axis=2))
    walls = np.abs(np.floor(beacon_pos[None, :, 0] / wall_every) - np.floor(phone[:, None, 0] / wall_every))
    floors = np.abs(bf[None, :] - pts[:, 1:2])
    other_building = bb[None, :] != pts[:, 0:1]
    mean = (tx_power - 10 * eta * np.log10(np.maximum(dist, 1.0)) - wall_loss * walls - floor_loss * floors
            - 30.0 * other_building)                                              # outer walls: 30 dB
    mean = mean + shadowing * rng.standard_normal((P, total))
    psi = np.arctan2(diff[:, :, 1], diff[:, :, 0])                               # (P, N)

    rows, pos, fl, bl, grp, hold = [], [], [], [], [], []
    for h in range(n_holdings):
        phi = 2 * np.pi * h / n_holdings
        att = B[None, :] * (1 - np.cos(psi - phi)) / 2
        for _ in range(n_repeats):
            rows.append(mean - att + noise * rng.standard_normal((P, total)))
            pos.append(pts[:, 2:4])
            fl.append(pts[:, 1])
            bl.append(pts[:, 0])
            grp.append(np.arange(P))
            hold.append(np.full(P, h))
    rss = np.concatenate(rows)
    rss = np.where(rss < sensitivity, not_heard, rss)
    order = np.lexsort((np.concatenate(hold), np.concatenate(grp)))               # rows grouped by point
    return FingerprintData(
        rss=np.ascontiguousarray(rss[order]), positions=np.ascontiguousarray(np.concatenate(pos)[order]),
        floor=np.concatenate(fl)[order].astype(np.int64), building=np.concatenate(bl)[order].astype(np.int64),
        groups=np.concatenate(grp)[order].astype(np.int64), not_heard=float(not_heard),
        beacons=[f"beacon{j:03d}" for j in range(total)],
        meta={"holding": np.concatenate(hold)[order].astype(np.int64)},
        info={"beacon_positions": beacon_pos, "beacon_floor": bf, "beacon_building": bb,
              "sensitive": np.arange(total) < n_sensitive, "body_loss": B})
