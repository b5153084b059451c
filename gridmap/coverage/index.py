"""Exact, boundary-inclusive point-in-polygon index over a set of polygons (a partition into grids).

``PolygonIndex(geoms).locate(lon, lat)`` answers, for each point, the LOWEST index ``i`` with
``shapely.intersects_xy(geoms[i], lon, lat)`` (a point on an edge or vertex is covered; holes are
respected; multipolygons work), or -1. The answer is exact, not approximate: every point that
is not decided by a precomputed table is tested with GEOS.

Design
------
A fine uniform raster is laid over the bounding box of the geometries (about 320 cells per
polygon, between 2**20 and 2**25 cells). At build time:

1. every boundary segment of every polygon is rasterised *conservatively* (cells enlarged by a
   margin far above floating-point rounding) — the touched cells are *mixed*, with the list of
   polygons whose boundary passes through them;
2. a cell (or a horizontal run of cells) that no boundary touches is covered uniformly: its
   answer is the lowest polygon covering its centre (tested exactly with ``intersects_xy``
   against the polygons whose bounding box meets the cell);
3. a mixed cell keeps a short, ascending candidate list (CSR): the polygons crossing it, cut
   after the lowest polygon that covers the whole cell without crossing it (overlapping data);
4. the raster is stored two-level: blocks of 4x4 cells that hold one answer are a single entry,
   the others point into a second table.

A mixed cell crossed end to end by a single straight segment (most of them) also stores that
segment and the answer on each side of it: a point whose side is certain (floating-point
orientation with Shewchuk's error bound) is answered without GEOS.

A lookup is arithmetic plus one or two table reads; only points in other mixed cells, or too
close to the segment to be sure of their side, are tested with prepared geometries, candidate
by candidate in ascending order, so the first hit is the answer. Because the margin dwarfs the rounding of ``(lon - x0) / w``, a point assigned to
a cell by floating-point arithmetic always lies inside that cell's enlarged box, for which the
classification holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray

__all__ = ["PolygonIndex"]

_BITS = 2
_B = 1 << _BITS  # block side in cells
_B2 = _B * _B
_MASK = _B - 1
_MIN_CELLS = 1 << 20
_MAX_CELLS = 1 << 25
_CELLS_PER_POLYGON = 320
_CHUNK = 1 << 18  # items per numpy batch in the build (bounds its temporary memory)
_SORT_MIN = 4096


class PolygonIndex:
    """Answers which polygon covers a point; geoms are WGS84 lon/lat polygons/multipolygons.

    ``geoms`` may contain ``None`` or empty geometries: they cover nothing. The geometries are
    prepared in place (``shapely.prepare``), which does not change any answer.
    ``target_cells`` overrides the raster size (tuning and tests only).
    """

    def __init__(
        self,
        geoms: Sequence[shapely.Geometry] | np.ndarray,
        *,
        metric_crs: pyproj.CRS | None = None,
        target_cells: int | None = None,
    ) -> None:
        arr = np.asarray(geoms, dtype=object).reshape(-1)
        self._geoms: NDArray[np.object_] = arr
        self._n = len(arr)
        self._metric_crs = metric_crs
        self._metric: tuple[shapely.STRtree, NDArray[np.int64], pyproj.Transformer] | None = None
        usable = np.flatnonzero(~(shapely.is_missing(arr) | shapely.is_empty(arr))) if self._n else np.empty(0, int)
        self._usable = usable
        # An empty table: every point is outside the raster.
        self._x0 = self._y0 = 0.0
        self._inv_w = 1.0
        self._nx = self._ny = 0
        self._nbx = 0
        self._l1 = np.full(1, -1, np.int32)
        self._l2 = np.full(_B2, -1, np.int32)
        self._off = np.zeros(1, np.int32)
        self._cand = np.zeros(0, np.int32)
        self._bounds = (math.nan,) * 4
        if len(usable):
            shapely.prepare(arr[usable])
            self._build(target_cells)
        self._finish()

    # ------------------------------------------------------------------ build

    def _build(self, target_cells: int | None) -> None:
        arr, usable, n = self._geoms, self._usable, self._n
        b = shapely.bounds(arr[usable])
        xmin, ymin = float(b[:, 0].min()), float(b[:, 1].min())
        xmax, ymax = float(b[:, 2].max()), float(b[:, 3].max())
        self._bounds = (xmin, ymin, xmax, ymax)
        cells = target_cells or min(max(_CELLS_PER_POLYGON * len(usable), _MIN_CELLS), _MAX_CELLS)
        sx, sy = xmax - xmin, ymax - ymin
        scale = max(1.0, abs(xmin), abs(xmax), abs(ymin), abs(ymax))
        w = max(math.sqrt(sx * sy / cells), max(sx, sy) / min(cells, 65536), 1e-10 * scale)
        inv_w = 1.0 / w
        nx = (int(sx * inv_w) + 2 + _MASK) & ~_MASK
        ny = (int(sy * inv_w) + 2 + _MASK) & ~_MASK
        nbx, nby = nx >> _BITS, ny >> _BITS
        # Enlargement of every cell, in cell units: ~1e-9 degree, >> rounding of (x - x0) * inv_w.
        eps = max(1e-7, 1e-11 * scale * inv_w)
        self._x0, self._y0, self._inv_w, self._nx, self._ny, self._nbx = xmin, ymin, inv_w, nx, ny, nbx
        self._w = w

        # 1. Conservative boundary raster: unique (cell, polygon) pairs, sorted.
        ax, ay, bx, by, owner = _linework(arr, usable)
        # Distinct geometric segments (a shared edge is one segment for both of its polygons).
        swap = (ax > bx) | ((ax == bx) & (ay > by))
        seg4 = np.column_stack([np.where(swap, bx, ax), np.where(swap, by, ay), np.where(swap, ax, bx), np.where(swap, ay, by)])
        seg_table, seg_id = _unique_rows(seg4)
        keys, seg_keys = self._rasterise(ax, ay, bx, by, owner, seg_id, len(seg_table), eps)
        single = _single_segment_cells(seg_keys, len(seg_table))
        del seg_keys
        mixed = keys // n  # flat cell ids (row-major, nx per row)
        cross_poly = (keys - mixed * n).astype(np.int32)
        del keys
        mstart = np.flatnonzero(np.r_[True, mixed[1:] != mixed[:-1]]) if len(mixed) else np.zeros(0, np.int64)
        mcells = mixed[mstart]
        mcount = np.diff(np.append(mstart, len(mixed)))
        del mixed

        # Block candidates (CSR): polygons whose bounding box meets the (enlarged) block.
        boff, bcand = self._block_candidates(b, usable, nbx, nby, eps)

        # 2. Uniform runs of non-mixed cells within each row: one exact centre test per run.
        total = nx * ny
        after = mcells + 1
        after = after[(after % nx != 0) & (after < total)]
        after = after[~_member(after, mcells)]
        row_starts = np.arange(0, total, nx, dtype=np.int64)
        row_starts = row_starts[~_member(row_starts, mcells)]
        runs = _sorted_unique(np.concatenate([after, row_starts]))
        run_owner = self._centre_owner(runs, boff, bcand, exclude=None)

        # 3. Mixed cells: lowest polygon covering the whole cell without crossing it.
        lowncc = self._centre_owner(mcells, boff, bcand, exclude=(mstart, mcount, cross_poly))
        del boff, bcand, mstart
        mvalue, is_mixed_cell = self._mixed_candidates(mcells, mcount, cross_poly, lowncc)
        del cross_poly, mcount, lowncc
        self._simple_cells(mcells[is_mixed_cell], single, seg_table, eps)
        del single, seg_table, is_mixed_cell

        # Full raster as runs: breakpoints are run starts and mixed cells.
        starts = np.concatenate([runs, mcells])
        del runs, mcells
        order = np.argsort(starts, kind="stable")
        starts = starts[order]
        values = np.concatenate([run_owner, mvalue]).astype(np.int32)[order]
        del order, run_owner, mvalue
        lengths = np.diff(np.append(starts, total))
        del starts
        raster = np.repeat(values, lengths).reshape(nby, _B, nbx, _B)
        del values, lengths

        # 4. Two-level table: uniform 4x4 blocks collapse into one entry.
        first = raster[:, :1, :, :1]
        uniform = (raster == first).all(axis=(1, 3))
        split_by, split_bx = np.nonzero(~uniform)
        del uniform
        l1 = first[:, 0, :, 0].copy()
        l1[split_by, split_bx] = -2 - np.arange(len(split_by), dtype=np.int32)
        self._l2 = np.ascontiguousarray(raster.transpose(0, 2, 1, 3)[split_by, split_bx]).reshape(-1)
        if not len(self._l2):
            self._l2 = np.full(_B2, -1, np.int32)
        self._l1 = np.ascontiguousarray(l1).reshape(-1)

    def _mixed_candidates(self, mcells, mcount, cross_poly, lowncc) -> tuple[NDArray, NDArray[np.bool_]]:
        """CSR candidate lists of the mixed cells; returns each cell's raster value and which stay mixed."""
        m = len(mcells)
        has = lowncc >= 0
        # Crossing pairs are sorted by (cell, polygon); keep those below the cell's full coverer,
        # which then goes last: the lists stay ascending without sorting.
        keep = cross_poly < np.repeat(np.where(has, lowncc, self._n), mcount)
        kcell = np.repeat(np.arange(m, dtype=np.int32), mcount)[keep]
        kpoly = cross_poly[keep]
        del keep
        nk = np.bincount(kcell, minlength=m)
        ccount = nk + has
        starts = np.cumsum(ccount) - ccount
        lists = np.empty(int(ccount.sum()), np.int32)
        lists[starts[kcell] + np.arange(len(kcell)) - (np.cumsum(nk) - nk)[kcell]] = kpoly
        del kcell, kpoly
        lists[(starts + nk)[has]] = lowncc[has]
        pure = (ccount == 1) & has  # only the non-crossing coverer is left
        is_mixed_cell = ~pure
        self._cand = lists[np.repeat(is_mixed_cell, ccount)]
        self._off = np.concatenate([[0], np.cumsum(ccount[is_mixed_cell])]).astype(np.int32)
        mvalue = np.empty(m, np.int32)
        mvalue[pure] = lowncc[pure]
        mvalue[is_mixed_cell] = -2 - np.arange(int(is_mixed_cell.sum()))
        return mvalue, is_mixed_cell

    def _simple_cells(self, cells, single, seg_table, eps) -> None:
        """Mixed cells crossed by one straight segment only, end to end: each side of its line is
        covered uniformly, so a point whose side is certain (floating-point orientation with an
        error bound) is answered without GEOS."""
        m = len(cells)
        one_cell, one_seg = single
        self._mrec = np.full((m, 3), -1, np.int32)
        self._seg = np.zeros((0, 4))
        if not m or not len(one_cell):
            return
        pos = np.minimum(np.searchsorted(one_cell, cells), max(len(one_cell) - 1, 0))
        cand_all = np.flatnonzero(one_cell[pos] == cells)
        sid_all = one_seg[pos[cand_all]]
        used, compact = np.unique(sid_all, return_inverse=True)
        self._seg = np.ascontiguousarray(seg_table[used])
        e = 4 * eps + 1e-9
        w = self._w
        off = self._off
        for lo in range(0, len(cand_all), _CHUNK):  # chunks keep the temporaries small
            cand_idx = cand_all[lo : lo + _CHUNK]
            sid = compact[lo : lo + _CHUNK]
            j, i = np.divmod(cells[cand_idx], self._nx)
            seg = self._seg[sid]
            # Both ends outside the enlarged cell (so the segment crosses it from side to side).
            outside = np.ones(len(sid), bool)
            for k in (0, 2):
                u = (seg[:, k] - self._x0) * self._inv_w
                v = (seg[:, k + 1] - self._y0) * self._inv_w
                outside &= ~((u >= i - e) & (u <= i + 1 + e) & (v >= j - e) & (v <= j + 1 + e))
            # Certain sides of the four corners: reference points for each side.
            cx = self._x0 + np.stack([i, i + 1, i, i + 1], 1) * w
            cy = self._y0 + np.stack([j, j, j + 1, j + 1], 1) * w
            det, bound = _orient(seg[:, :1], seg[:, 1:2], seg[:, 2:3], seg[:, 3:4], cx, cy)
            r = np.arange(len(sid))
            kpos = np.argmax(det - bound, axis=1)
            kneg = np.argmin(det + bound, axis=1)
            ok = outside & (det[r, kpos] > bound[r, kpos]) & (det[r, kneg] < -bound[r, kneg])
            cand_idx, sid, r, kpos, kneg = cand_idx[ok], sid[ok], r[ok], kpos[ok], kneg[ok]
            start = off[cand_idx]
            count = off[cand_idx + 1] - start
            self._mrec[cand_idx, 0] = sid
            self._mrec[cand_idx, 1] = _first_cover(self._geoms, cx[r, kpos], cy[r, kpos], start, count, self._cand)
            self._mrec[cand_idx, 2] = _first_cover(self._geoms, cx[r, kneg], cy[r, kneg], start, count, self._cand)

    def _rasterise(self, ax, ay, bx, by, owner, seg_id, nseg, eps) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Unique ``cell * n + polygon`` and ``cell * nseg + segment`` keys of the cells whose
        enlarged box meets a boundary segment."""
        x0, y0, inv_w, nx, ny, n = self._x0, self._y0, self._inv_w, self._nx, self._ny, self._n
        u0 = (ax - x0) * inv_w
        v0 = (ay - y0) * inv_w
        du = (bx - x0) * inv_w - u0
        dv = (by - y0) * inv_w - v0
        pieces = np.maximum(1, np.ceil(np.maximum(np.abs(du), np.abs(dv)))).astype(np.int64)
        ends = np.cumsum(pieces)
        out: list[NDArray[np.int64]] = []
        out_seg: list[NDArray[np.int64]] = []
        lo = 0
        while lo < len(pieces):
            base = ends[lo - 1] if lo else 0
            hi = max(int(np.searchsorted(ends, base + _CHUNK, side="right")), lo + 1)
            p = pieces[lo:hi]
            seg = np.repeat(np.arange(lo, hi), p)
            k = np.arange(len(seg)) - np.repeat(np.cumsum(p) - p, p)
            t0 = k / pieces[seg]
            t1 = (k + 1) / pieces[seg]
            su0, sv0, sdu, sdv = u0[seg], v0[seg], du[seg], dv[seg]
            pu0, pu1 = su0 + sdu * t0, su0 + sdu * t1
            pv0, pv1 = sv0 + sdv * t0, sv0 + sdv * t1
            i0 = np.clip(np.floor(np.minimum(pu0, pu1) - eps), 0, nx - 1).astype(np.int64)
            i1 = np.clip(np.floor(np.maximum(pu0, pu1) + eps), 0, nx - 1).astype(np.int64)
            j0 = np.clip(np.floor(np.minimum(pv0, pv1) - eps), 0, ny - 1).astype(np.int64)
            j1 = np.clip(np.floor(np.maximum(pv0, pv1) + eps), 0, ny - 1).astype(np.int64)
            ni = i1 - i0 + 1
            cnt = ni * (j1 - j0 + 1)
            rep = np.repeat(np.arange(len(seg)), cnt)
            r = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            nir = ni[rep]
            ci = i0[rep] + r % nir
            cj = j0[rep] + r // nir
            s = seg[rep]
            a, c, ou, ov = du[s], dv[s], u0[s], v0[s]
            # Side of the segment's line for the 4 corners of the enlarged cell; keep if they straddle.
            ylo = a * (cj - eps - ov)
            yhi = a * (cj + 1 + eps - ov)
            xlo = c * (ci - eps - ou)
            xhi = c * (ci + 1 + eps - ou)
            smin = np.minimum(ylo, yhi) - np.maximum(xlo, xhi)
            smax = np.maximum(ylo, yhi) - np.minimum(xlo, xhi)
            hit = (smin <= 0) & (smax >= 0)
            cell, s = cj[hit] * nx + ci[hit], s[hit]
            out.append(_sorted_unique(cell * n + owner[s]))
            out_seg.append(_sorted_unique(cell * nseg + seg_id[s]))
            lo = hi
        if not out:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys = np.concatenate(out)
        del out
        keys = _sorted_unique(keys)
        seg_keys = np.concatenate(out_seg)
        del out_seg
        return keys, _sorted_unique(seg_keys)

    def _block_candidates(self, b, usable, nbx, nby, eps) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """CSR (block -> ascending polygons) of polygons whose bounding box meets the enlarged block."""
        x0, y0, inv_w = self._x0, self._y0, self._inv_w
        e = eps / _B
        i0 = np.clip(np.floor((b[:, 0] - x0) * inv_w / _B - e), 0, nbx - 1).astype(np.int64)
        i1 = np.clip(np.floor((b[:, 2] - x0) * inv_w / _B + e), 0, nbx - 1).astype(np.int64)
        j0 = np.clip(np.floor((b[:, 1] - y0) * inv_w / _B - e), 0, nby - 1).astype(np.int64)
        j1 = np.clip(np.floor((b[:, 3] - y0) * inv_w / _B + e), 0, nby - 1).astype(np.int64)
        ni = i1 - i0 + 1
        cnt = ni * (j1 - j0 + 1)
        rep = np.repeat(np.arange(len(usable)), cnt)
        r = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        block = (j0[rep] + r // ni[rep]) * nbx + i0[rep] + r % ni[rep]
        poly = usable[rep]  # ascending already
        order = np.argsort(block, kind="stable")
        block, poly = block[order], poly[order]
        boff = np.searchsorted(block, np.arange(nbx * nby + 1))
        return boff.astype(np.int64), poly.astype(np.int64)

    def _centre_owner(self, cells, boff, bcand, exclude) -> NDArray[np.int64]:
        """Lowest polygon covering each cell's centre, among its block's candidates.

        With ``exclude=(start, count, polys)`` (CSR aligned with ``cells``) the polygons crossing
        the cell are skipped: the answer is then the lowest polygon covering the whole cell.
        """
        res = np.full(len(cells), -1, np.int64)
        for lo in range(0, len(cells), _CHUNK):  # chunks keep the temporaries small
            sl = slice(lo, lo + _CHUNK)
            j, i = np.divmod(cells[sl], self._nx)
            block = (j >> _BITS) * self._nbx + (i >> _BITS)
            x = self._x0 + (i + 0.5) * self._w
            y = self._y0 + (j + 0.5) * self._w
            start = boff[block]
            count = boff[block + 1] - start
            if exclude is None:
                res[sl] = _first_cover(self._geoms, x, y, start, count, bcand)
                continue
            # Expand (cell, candidate) pairs and drop the crossing polygons, keeping CSR order.
            xstart, xcount, xpoly = exclude
            rep = np.repeat(np.arange(len(count)), count)
            poly = bcand[np.repeat(start - np.cumsum(count) + count, count) + np.arange(len(rep))]
            xc = xcount[sl]
            xkeys = np.repeat(np.arange(len(xc)), xc) * self._n + xpoly[xstart[lo] : xstart[lo] + xc.sum()]
            keep = ~_member(rep * self._n + poly, xkeys)
            rep, poly = rep[keep], poly[keep]
            kc = np.bincount(rep, minlength=len(count))
            res[sl] = _first_cover(self._geoms, x, y, np.cumsum(kc) - kc, kc, poly)
        return res

    def _finish(self) -> None:
        # Python-level views for locate_one (memoryview indexing returns plain ints, fast).
        self._l1m = memoryview(self._l1)
        self._l2m = memoryview(self._l2)
        self._offm = memoryview(self._off)
        self._candm = memoryview(self._cand)
        if not hasattr(self, "_mrec"):
            self._mrec = np.full((0, 3), -1, np.int32)
            self._seg = np.zeros((0, 4))
        self._mrecm = memoryview(self._mrec.reshape(-1))
        self._segl = self._seg.tolist()
        self._nxf = float(self._nx)
        self._nyf = float(self._ny)

    # ---------------------------------------------------------------- pickling (gridmap.coverage.cache)

    def __getstate__(self) -> dict:
        """The tables and geometries; not the memoryviews made for ``locate_one`` (they cannot be pickled)
        nor the metric STRtree of ``nearest`` (built again on first use)."""
        return {k: v for k, v in self.__dict__.items() if not isinstance(v, memoryview) and k not in ("_segl", "_metric")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._metric = None
        if len(self._usable):
            shapely.prepare(self._geoms[self._usable])  # preparation is not pickled
        self._finish()

    # ---------------------------------------------------------------- queries

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (
            f"PolygonIndex({self._n} polygons, raster {self._nx}x{self._ny}, "
            f"{len(self._l2) // _B2} split blocks, {len(self._off) - 1} mixed cells)"
        )

    def locate(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.int64]:
        """Vectorised: index into geoms of the covering polygon for each point, -1 where none."""
        x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
        shape = x.shape
        x = x.reshape(-1)
        y = y.reshape(-1)
        fx = x - self._x0
        fx *= self._inv_w
        fy = y - self._y0
        fy *= self._inv_w
        ok = (fx >= 0) & (fx < self._nxf) & (fy >= 0) & (fy < self._nyf)  # False for NaN
        all_ok = bool(ok.all())
        if not all_ok:
            fx[~ok] = 0.0
            fy[~ok] = 0.0
        ix = fx.astype(np.int32)
        iy = fy.astype(np.int32)
        v = self._l1[(iy >> _BITS) * self._nbx + (ix >> _BITS)]
        if not all_ok:
            v[~ok] = -1
        split = np.flatnonzero(v <= -2)
        if len(split):
            sx, sy = ix[split], iy[split]
            v[split] = self._l2[(-2 - v[split]) * _B2 + ((sy & _MASK) << _BITS) + (sx & _MASK)]
            sub = np.flatnonzero(v[split] <= -2)
            if len(sub):
                pts = split[sub]
                cell = -2 - v[pts].astype(np.int64)
                rec = self._mrec[cell]  # (segment, owner left, owner right), segment -1: not simple
                simple = np.flatnonzero(rec[:, 0] >= 0)
                if len(simple):
                    rec = rec[simple]
                    seg = self._seg[rec[:, 0]]
                    sp = pts[simple]
                    det, bound = _orient(seg[:, 0], seg[:, 1], seg[:, 2], seg[:, 3], x[sp], y[sp])
                    left = det > bound
                    sure = left | (det < -bound)
                    v[sp] = np.where(left, rec[:, 1], rec[:, 2])  # uncertain ones are redone below
                    rest = np.ones(len(pts), bool)
                    rest[simple[sure]] = False
                    pts, cell = pts[rest], cell[rest]
                start = self._off[cell]
                count = self._off[cell + 1] - start
                v[pts] = _first_cover(self._geoms, x[pts], y[pts], start, count, self._cand)
        return v.astype(np.int64).reshape(shape)

    def locate_one(self, lon: float, lat: float) -> int:
        """Same answer as ``locate`` for one point (pure-Python table walk, GEOS only in mixed cells)."""
        lon = float(lon)
        lat = float(lat)
        fx = (lon - self._x0) * self._inv_w
        fy = (lat - self._y0) * self._inv_w
        if not (0.0 <= fx < self._nxf and 0.0 <= fy < self._nyf):
            return -1
        ix = int(fx)
        iy = int(fy)
        v = self._l1m[(iy >> _BITS) * self._nbx + (ix >> _BITS)]
        if v >= -1:
            return v
        v = self._l2m[(-2 - v) * _B2 + ((iy & _MASK) << _BITS) + (ix & _MASK)]
        if v >= -1:
            return v
        m = -2 - v
        sid = self._mrecm[3 * m]
        if sid >= 0:
            ax, ay, bx, by = self._segl[sid]
            left = (bx - ax) * (lat - ay)
            right = (by - ay) * (lon - ax)
            det = left - right
            bound = 1e-15 * (abs(left) + abs(right))
            if det > bound:
                return self._mrecm[3 * m + 1]
            if det < -bound:
                return self._mrecm[3 * m + 2]
        geoms, cand = self._geoms, self._candm
        for k in range(self._offm[m], self._offm[m + 1]):
            c = cand[k]
            if shapely.intersects_xy(geoms[c], lon, lat):
                return c
        return -1

    def nearest(self, lon: float, lat: float) -> tuple[int, float]:
        """Nearest polygon and its distance in metres (0 if covered); distances computed in metric_crs
        (default: the UTM zone of the geoms' centre), never in degrees.

        Ties go to the lowest index. ``(-1, inf)`` for an empty index or a non-finite point.
        """
        lon = float(lon)
        lat = float(lat)
        if not (math.isfinite(lon) and math.isfinite(lat)) or not len(self._usable):
            return -1, math.inf
        hit = self.locate_one(lon, lat)
        if hit >= 0:
            return hit, 0.0
        tree, usable, to_metric = self._metric_index()
        px, py = to_metric.transform(lon, lat)
        found, dist = tree.query_nearest(shapely.Point(px, py), return_distance=True, all_matches=True)
        if not len(found):
            return -1, math.inf
        best = dist.min()
        return int(usable[found[dist == best]].min()), float(best)

    @property
    def metric_crs(self) -> pyproj.CRS | None:
        """The CRS ``nearest`` measures in (chosen on first use when not given)."""
        if self._metric_crs is None and len(self._usable):
            from gridmap.geo import metric_crs

            xmin, ymin, xmax, ymax = self._bounds
            self._metric_crs = metric_crs((xmin + xmax) / 2, (ymin + ymax) / 2)
        return self._metric_crs

    def _metric_index(self) -> tuple[shapely.STRtree, NDArray[np.int64], pyproj.Transformer]:
        if self._metric is None:
            to_metric = pyproj.Transformer.from_crs("EPSG:4326", self.metric_crs, always_xy=True)

            def project(coords: NDArray) -> NDArray:
                return np.column_stack(to_metric.transform(coords[:, 0], coords[:, 1]))

            metric = shapely.transform(self._geoms[self._usable], project)
            self._metric = (shapely.STRtree(metric), self._usable, to_metric)
        return self._metric


# ---------------------------------------------------------------------- helpers


def _sorted_unique(a: NDArray) -> NDArray:
    """``np.unique`` by sorting (numpy 2's hash-based unique is much slower on large int arrays)."""
    a = np.sort(a)
    if not len(a):
        return a
    keep = np.empty(len(a), bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _unique_rows(a: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Unique rows of a float array (exact equality) and the inverse index."""
    if not len(a):
        return a, np.zeros(0, np.int64)
    order = np.lexsort(a.T[::-1])
    s = a[order]
    new = np.r_[True, (s[1:] != s[:-1]).any(axis=1)]
    inverse = np.empty(len(a), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return s[new], inverse


def _single_segment_cells(seg_keys: NDArray[np.int64], nseg: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Cells touched by exactly one distinct segment, and that segment (from sorted cell*nseg+seg keys)."""
    nseg = max(nseg, 1)
    scell = seg_keys // nseg
    starts = np.flatnonzero(np.r_[True, scell[1:] != scell[:-1]]) if len(scell) else np.zeros(0, np.int64)
    one = starts[np.diff(np.append(starts, len(scell))) == 1]
    return scell[one], seg_keys[one] - scell[one] * nseg


def _orient(ax, ay, bx, by, px, py):
    """Orientation determinant of p against segment a->b and a bound on its rounding error.

    ``det > bound`` (or ``det < -bound``) means the sign is certain: Shewchuk's first-stage bound
    for orient2d is 3.33e-16 * (|l| + |r|); 1e-15 leaves a threefold margin.
    """
    left = (bx - ax) * (py - ay)
    right = (by - ay) * (px - ax)
    return left - right, 1e-15 * (np.abs(left) + np.abs(right))


def _member(values: NDArray, sorted_set: NDArray) -> NDArray[np.bool_]:
    """``values in sorted_set`` elementwise, for a sorted unique array."""
    if not len(sorted_set):
        return np.zeros(len(values), bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[pos] == values


def _first_cover(geoms, x, y, start, count, cand) -> NDArray[np.int64]:
    """For point k: the first ``cand[start[k] + j]`` (j < count[k]) covering it, else -1.

    Candidates are ascending, so the first hit is the lowest covering index. One vectorised
    ``intersects_xy`` round per candidate rank; points drop out as soon as they are decided.
    """
    res = np.full(len(x), -1, np.int64)
    active = np.flatnonzero(count > 0)
    j = 0
    while len(active):
        c = cand[start[active] + j]
        if len(c) > _SORT_MIN:
            # Test polygon by polygon: GEOS structures stay in cache (3x faster on 100k polygons).
            order = np.argsort(c)
            active, c = active[order], c[order]
        hit = shapely.intersects_xy(geoms[c], x[active], y[active])
        res[active[hit]] = c[hit]
        active = active[~hit]
        j += 1
        active = active[count[active] > j]
    return res


def _linework(arr: NDArray[np.object_], usable: NDArray[np.int64]):
    """All boundary segments (ax, ay, bx, by, owner) of the geometries; points become 0-length segments."""
    parts, idx = shapely.get_parts(arr[usable], return_index=True)
    owner = usable[idx]
    while True:
        types = shapely.get_type_id(parts)
        coll = types == 7
        if not coll.any():
            break
        sub, si = shapely.get_parts(parts[coll], return_index=True)
        parts = np.concatenate([parts[~coll], sub])
        owner = np.concatenate([owner[~coll], owner[coll][si]])
    polys = types == 3
    rings, ri = shapely.get_rings(parts[polys], return_index=True)
    liney = (types == 1) | (types == 2)
    lines = np.concatenate([rings, parts[liney]])
    lowner = np.concatenate([owner[polys][ri], owner[liney]])
    coords, ci = shapely.get_coordinates(lines, return_index=True)
    same = ci[1:] == ci[:-1]
    a, bb, so = coords[:-1][same], coords[1:][same], lowner[ci[:-1][same]]
    pts = types == 0
    pc = shapely.get_coordinates(parts[pts])
    a = np.concatenate([a, pc])
    bb = np.concatenate([bb, pc])
    so = np.concatenate([so, owner[pts][: len(pc)]])
    return a[:, 0], a[:, 1], bb[:, 0], bb[:, 1], so.astype(np.int64)
