"""Render fields of view of simulated MCF-7 cells in DNA, β-tubulin and F-actin.

One field is a square image with tens of cells laid out on a jittered hexagonal
grid dense enough that neighbours touch. Rendering, in order:

1. **Cell territories.** Each cell is an ellipse with a ruffled boundary (a few
   random Fourier harmonics). A pixel belongs to the cell in whose normalised
   coordinates it lies deepest (`rho < 1`), so neighbours meet along shared
   edges; where two cells both reach a pixel the cytoplasm is thicker (overlap).
2. **Nuclei** (DNA). Soft-edged ellipses with chromatin texture, added up, so
   touching nuclei overlap; 2-4 nuclei for multinucleate cells, small satellite
   nuclei for micronucleated ones, small bright condensed DNA in mitosis.
3. **β-tubulin.** Radial microtubules from the nucleus (a periodic fibre texture
   sampled in polar coordinates), perinuclear enrichment, optional thick bundles
   and a perinuclear aggresome; as bright over the nucleus as beside it.
4. **F-actin.** A little dimmer over the nucleus; cortical rim, stress fibres along the cell's long axis, and
   puncta that replace filaments when actin is disrupted.
5. **Microscope.** Per-channel exposure (`DMSO_EXPOSURE`), per-plate channel gains, a per-field illumination gradient
   with vignetting, Gaussian blur (point-spread function), background, signal-
   dependent (shot) plus read noise, 8-bit quantisation.

Everything is vectorised with numpy over pixels; the only Python loop is over cells
(bounding-box updates), so a field of ~60 cells renders in tens of milliseconds.

Why one module of ~570 lines: it has one job (a field from a cell table), and its
painting steps share the private per-field types `_Geometry`, `_Territories` and
`_CytoplasmPixels` and one random stream whose draw order fixes every pixel of the
bundled slice; splitting it would make those types public for no reader's gain. Each
compiled painting step (`render_kernels`) sits beside the numpy code it must equal bit for
bit, which is the fallback without numba and what the tests compare it against.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from cp2image.channels import CROP_SIZE
from cp2image.data.simulate import render_kernels

TEXTURE_SEED = 20221021  # fixed: the texture bank is part of the simulator, not of a screen
N_TILES = 8
TILE_THETA = 512  # tile rows, sampled by angle around the nucleus (periodic; a power of 2)
TILE_R = 256  # tile columns, sampled by distance from the nucleus (px; a power of 2)

# Stain layout around the nucleus, matched to real BBBC021 DMSO crops (per-crop max scaled,
# `cp2image.data.simulate.realism`): real β-tubulin is as bright over the nucleus as beside it
# (the perinuclear cage lies above and below it in a widefield image) and fades over ~10 px;
# F-actin is only a little dimmer there. See tests/simulate/test_realism.py for the numbers.
TUBULIN_NUCLEAR_SHADOW = 0.0  # fraction of β-tubulin hidden over the nucleus (was 0.45: real crops show none)
ACTIN_NUCLEAR_SHADOW = 0.2  # fraction of F-actin hidden over the nucleus (real nucleus/cytoplasm ≈ 0.8)
TUBULIN_PERINUCLEAR_DECAY_PX = 12.0  # e-folding distance (px) of the perinuclear β-tubulin enrichment

# Camera exposure per channel (DNA, Tubulin, Actin), a gain on the stain signal before background and noise.
# Fitted so that the pooled 99th percentile of the simulated DMSO crops equals that of the real BBBC021
# DMSO crops as ingested (233, 231, 221 of 255; 3,438 cells, 30 plates): DNA and F-actin used to be
# exposed too short (p99 161 and 75) and β-tubulin too long (1.3 % of its pixels clipped at 255), which
# made composites tubulin-red with dim actin. Intensities stay absolute (not scaled per crop), so treated
# cells are brighter or dimmer than DMSO as their phenotype says. tests/simulate/test_channel_balance.py
# checks the result against the real crops.
DMSO_EXPOSURE: tuple[float, float, float] = (1.5, 0.821, 2.642)


@dataclass(frozen=True)
class RenderConfig:
    """Field geometry and microscope model; intensities are fractions of 255."""

    field_size: int = 384  # field edge (px); crops come from cells ≥ crop_size/2 from the edge
    crop_size: int = CROP_SIZE  # crop edge (px)
    spacing: float = 1.65  # grid spacing in expected cell radii (< 2 → neighbours touch)
    jitter: float = 0.12  # random displacement of grid positions (fraction of spacing)
    psf_sigma: tuple[float, float, float] = (1.0, 0.8, 0.8)  # Gaussian blur per channel (px)
    background: tuple[float, float, float] = (0.08, 0.08, 0.035)  # camera offset + out-of-focus haze (real DMSO crops)
    exposure: tuple[float, float, float] = DMSO_EXPOSURE  # per-channel gain on the stain signal (see DMSO_EXPOSURE)
    shot_noise: float = 2e-4  # variance per unit intensity (signal-dependent noise)
    read_noise: float = 0.003  # sd of signal-independent noise
    illumination: float = 0.12  # max relative illumination gradient across a field
    vignetting: float = 0.15  # relative darkening in the field corners

    def __post_init__(self) -> None:
        if len(self.exposure) != 3 or not all(np.isfinite(e) and e > 0 for e in self.exposure):
            raise ValueError(f"exposure must be three positive gains (DNA, Tubulin, Actin); got {self.exposure}")


@dataclass(frozen=True)
class PlateEffect:
    """Plate-to-plate differences: per-channel staining/exposure gain and offset."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def draw(cls, rng: np.random.Generator, *, gain_sd: float = 0.08, offset_sd: float = 0.006) -> "PlateEffect":
        gain = np.exp(gain_sd * rng.standard_normal(3))
        offset = offset_sd * rng.standard_normal(3)
        return cls(tuple(float(g) for g in gain), tuple(float(o) for o in offset))


@dataclass
class Field:
    """A rendered field and where its cells are."""

    image: np.ndarray  # uint8 (3, S, S)
    centres: np.ndarray  # (K, 2) float, primary nucleus centre (x, y) per cell
    cell_area: np.ndarray  # (K,) int, pixels owned by each cell after neighbours compete
    nucleus_area: np.ndarray  # (K,) float, area of the primary nucleus ellipse (px²)
    label: np.ndarray | None = None  # int32 (S, S): owning cell per pixel, -1 = background
    layout: dict[str, np.ndarray] = field(default_factory=dict)  # per-cell geometry (angle, ...)


# ----------------------------------------------------------------------------- textures


def _filtered_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: tuple[float, float]) -> np.ndarray:
    """Periodic Gaussian-filtered white noise (FFT), zero mean and unit sd."""
    noise = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2 * np.pi**2 * ((ky * sigma[0]) ** 2 + (kx * sigma[1]) ** 2))
    out = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=shape)
    out -= out.mean()
    return out / (out.std() + 1e-12)


@lru_cache(maxsize=2)
def texture_bank(seed: int = TEXTURE_SEED) -> dict[str, np.ndarray]:
    """Periodic texture tiles (N_TILES, TILE_THETA, TILE_R), each with mean 1.

    - `fibre`: thin filaments elongated along axis 1 (radial microtubules, stress fibres)
    - `bundle`: sparse, thick, bright filaments (stabilised microtubule bundles)
    - `chromatin`: blotchy nuclear texture (zero mean, unit sd; used as a contrast)
    - `puncta`: sparse round dots (F-actin fragments)
    - `warp`: smooth displacement field (unit sd) that bends straight fibres into curves
    """
    rng = np.random.default_rng(seed)
    shape = (TILE_THETA, TILE_R)
    bank: dict[str, list[np.ndarray]] = {"fibre": [], "bundle": [], "chromatin": [], "puncta": [], "warp": []}
    for _ in range(N_TILES):
        f = np.clip(_filtered_noise(rng, shape, (1.0, 9.0)) + 0.6, 0, None)
        bank["fibre"].append(f / f.mean())
        b = np.clip(_filtered_noise(rng, shape, (2.2, 18.0)) - 0.9, 0, None)
        bank["bundle"].append(b / np.percentile(b, 99.5))
        bank["chromatin"].append(_filtered_noise(rng, shape, (1.6, 1.6)) * 0.8 + 0.6 * _filtered_noise(rng, shape, (0.7, 0.7)))
        dots = (rng.random(shape) < 0.006).astype(float) * rng.uniform(0.5, 1.0, shape)
        p = np.real(np.fft.ifft2(np.fft.fft2(dots) * np.fft.fft2(_gauss_kernel(shape, 0.9))))
        bank["puncta"].append(p / np.percentile(p, 99.5))
        bank["warp"].append(_filtered_noise(rng, shape, (7.0, 7.0)))
    return {k: np.stack(v).astype(np.float32) for k, v in bank.items()}


def _gauss_kernel(shape: tuple[int, int], sigma: float) -> np.ndarray:
    y = np.minimum(np.arange(shape[0]), shape[0] - np.arange(shape[0]))[:, None]
    x = np.minimum(np.arange(shape[1]), shape[1] - np.arange(shape[1]))[None, :]
    k = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return k / k.max()


def _sample(tiles: np.ndarray, tile: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Nearest-neighbour lookup of per-pixel tile coordinates (a along rows, b along columns).

    Tiles are periodic with power-of-two sides, so wrapping is a bit mask (which is
    also correct for negative coordinates in two's complement).
    """
    _, rows, cols = tiles.shape
    ia = a.astype(np.int32) & (rows - 1)
    ib = b.astype(np.int32) & (cols - 1)
    return np.take(tiles.reshape(-1), (tile.astype(np.int32) * rows + ia) * cols + ib)


# ----------------------------------------------------------------------------- layout


def layout_positions(rng: np.random.Generator, *, config: RenderConfig, cell_radius: float) -> np.ndarray:
    """Jittered hexagonal grid of cell centres (K, 2) covering the field and its edge."""
    s = config.spacing * cell_radius
    dy = s * np.sqrt(3) / 2
    size = config.field_size
    offset = rng.random(2) * np.array([s, dy])
    ys = np.arange(-dy, size + dy, dy) + offset[1] - dy / 2
    pts = []
    for row, y in enumerate(ys):
        xs = np.arange(-s, size + s, s) + offset[0] + (s / 2 if row % 2 else 0.0) - s / 2
        pts.append(np.stack([xs, np.full_like(xs, y)], axis=1))
    centres = np.concatenate(pts)
    centres += config.jitter * s * rng.uniform(-1, 1, centres.shape)
    return centres


# ----------------------------------------------------------------------------- rendering


@dataclass
class _Geometry:
    """Per-cell layout drawn for one field: cell ellipse + ruffle, and where the nucleus sits."""

    angle: np.ndarray  # cell long-axis angle (rad)
    semi_a: np.ndarray  # cell semi-axes (px)
    semi_b: np.ndarray
    harm_w: np.ndarray  # (K, len(HARMONICS)) ruffle weights
    harm_phase: np.ndarray  # (K, len(HARMONICS)) ruffle phases
    nuc_angle: np.ndarray  # nucleus long-axis angle (rad)
    off_t: np.ndarray  # direction of the nucleus offset from the cell centre (rad)
    nucleus_xy: np.ndarray  # (K, 2) primary nucleus centre


@dataclass
class _Territories:
    """Which cell owns each pixel, how deep inside it lies, and the runner-up (for overlaps)."""

    best: np.ndarray  # (S, S) lowest normalised radius over cells (< 1 inside a cell)
    second: np.ndarray  # (S, S) runner-up normalised radius
    label: np.ndarray  # (S, S) owning cell, -1 = background


def render_field(
    rng: np.random.Generator,
    cells: dict[str, np.ndarray],
    centres: np.ndarray,
    *,
    config: RenderConfig = RenderConfig(),
    plate: PlateEffect = PlateEffect(),
) -> Field:
    """Render the cells `cells` (arrays from `draw_cells`) at `centres` (K, 2) into one field."""
    stains, geom, terr = render_stains(rng, cells, centres, field_size=config.field_size)
    image = _microscope(rng, stains, config=config, plate=plate)
    k = len(centres)
    label = terr.label
    cell_area = np.bincount(label.ravel()[label.ravel() >= 0], minlength=k)[:k]
    layout = {"angle": geom.angle, "nucleus_x": geom.nucleus_xy[:, 0], "nucleus_y": geom.nucleus_xy[:, 1]}
    rn = np.asarray(cells["nucleus_radius"], dtype=np.float32)
    return Field(image=image, centres=geom.nucleus_xy, cell_area=cell_area, nucleus_area=np.pi * rn * rn,
                 label=label, layout=layout)


def render_stains(
    rng: np.random.Generator, cells: dict[str, np.ndarray], centres: np.ndarray, *, field_size: int,
) -> tuple[np.ndarray, _Geometry, _Territories]:
    """Stain density (3, S, S) float32 before the microscope (fractions of 255), with the layout drawn."""
    k = len(centres)
    if any(len(v) != k for v in cells.values()):
        raise ValueError(f"render_field: {k} centres but cell arrays of lengths {sorted({len(v) for v in cells.values()})}")
    cells = {name: (v.astype(np.float32) if v.dtype == np.float64 else v) for name, v in cells.items()}
    geom = _cell_geometry(rng, cells, centres)
    terr = _territories(cells, centres, geom, field_size)
    tile_id = rng.integers(0, N_TILES, (k, 3))
    tile_off = rng.uniform(0, 1000, (k, 6)).astype(np.float32)
    dna, occupancy = _paint_nuclei(rng, cells, geom, tile_id, tile_off, field_size)
    tub = np.zeros((field_size, field_size), np.float32)
    act = np.zeros((field_size, field_size), np.float32)
    fg = np.flatnonzero(terr.label.ravel() >= 0)
    if fg.size:
        px = _CytoplasmPixels.of(fg, cells, centres, geom, terr, occupancy, tile_id, field_size)
        mesh_angle = rng.uniform(0, np.pi, k)
        tub.ravel()[fg] = _paint_tubulin(px, cells, geom, tile_id, tile_off, mesh_angle)
        act.ravel()[fg] = _paint_actin(px, cells, centres, geom, tile_id, tile_off)
    return np.stack([dna, tub, act]), geom, terr


def _cell_geometry(rng: np.random.Generator, cells: dict[str, np.ndarray], centres: np.ndarray) -> _Geometry:
    """Draw each cell's orientation and ruffle, and offset its nucleus from the centre."""
    k = len(centres)
    angle = rng.uniform(0, np.pi, k)
    r = cells["cell_radius"]
    sa = np.sqrt(cells["cell_aspect"])
    harm_w = rng.dirichlet(np.ones(len(HARMONICS)), k)  # (K, 5) weights summing to 1
    harm_phase = rng.uniform(0, 2 * np.pi, (k, len(HARMONICS)))
    nuc_angle = angle + rng.normal(0, 0.35, k)  # the nucleus is aligned with the cell, plus noise
    off_r = 0.12 * r * rng.random(k) * (1 - 0.6 * cells["mitotic"])
    off_t = rng.uniform(0, 2 * np.pi, k)
    nucleus_xy = centres + np.stack([off_r * np.cos(off_t), off_r * np.sin(off_t)], 1)
    return _Geometry(angle=angle, semi_a=r * sa, semi_b=r / sa, harm_w=harm_w, harm_phase=harm_phase,
                     nuc_angle=nuc_angle, off_t=off_t, nucleus_xy=nucleus_xy)


def _territories(cells: dict[str, np.ndarray], centres: np.ndarray, geom: _Geometry, size: int,
                 *, compiled: bool = True) -> _Territories:
    """Each pixel goes to the cell in whose normalised coordinates it lies deepest (neighbours share edges).

    `compiled` runs the same loop compiled (`render_kernels`, bit-identical) when numba is there.
    """
    best = np.full((size, size), np.inf, np.float32)
    second = np.full((size, size), np.inf, np.float32)
    label = np.full((size, size), -1, np.int32)
    irregular = cells["cell_irregularity"]
    reach = np.ceil(geom.semi_a * (1 + irregular) + 2).astype(int)
    if compiled and render_kernels.HAS_NUMBA and HARMONICS == render_kernels.KERNEL_HARMONICS and len(centres):
        # the transcendentals stay numpy's (the same ufunc as the per-cell calls below); the kernel does the arithmetic
        angle, phase = np.asarray(geom.angle, np.float64), np.asarray(geom.harm_phase, np.float64)
        render_kernels.compiled("territories_loop")(
            best, second, label, np.ascontiguousarray(centres[:, 0], np.float64), np.ascontiguousarray(centres[:, 1], np.float64),
            reach.astype(np.int64), np.cos(angle), np.sin(angle), geom.semi_a, geom.semi_b, irregular,
            np.ascontiguousarray(geom.harm_w, np.float64), np.cos(phase), np.sin(phase))
        label[best >= 1] = -1
        return _Territories(best=best, second=second, label=label)
    for i in range(len(centres)):
        x0, y0 = centres[i]
        xa, xb = max(int(x0) - reach[i], 0), min(int(x0) + reach[i] + 1, size)
        ya, yb = max(int(y0) - reach[i], 0), min(int(y0) + reach[i] + 1, size)
        if xa >= xb or ya >= yb:
            continue
        dx = (np.arange(xa, xb, dtype=np.float32) - x0)[None, :]
        dy = (np.arange(ya, yb, dtype=np.float32) - y0)[:, None]
        c, s = np.cos(geom.angle[i]), np.sin(geom.angle[i])
        u = (dx * c + dy * s) / geom.semi_a[i]
        v = (-dx * s + dy * c) / geom.semi_b[i]
        radius = np.sqrt(u * u + v * v)
        ruffle = _ruffle(u / (radius + 1e-6), v / (radius + 1e-6), geom.harm_w[i], geom.harm_phase[i])
        rho = radius / (1 + irregular[i] * ruffle)
        b = best[ya:yb, xa:xb]
        sec = second[ya:yb, xa:xb]
        lab = label[ya:yb, xa:xb]
        closer = rho < b
        np.copyto(sec, np.where(closer, b, np.minimum(sec, rho)))
        np.copyto(b, np.where(closer, rho, b))
        lab[closer & (rho < 1)] = i
    label[best >= 1] = -1
    return _Territories(best=best, second=second, label=label)


def _paint_nuclei(rng: np.random.Generator, cells: dict[str, np.ndarray], geom: _Geometry, tile_id: np.ndarray,
                  tile_off: np.ndarray, size: int, *, compiled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """DNA density (added up, so touching nuclei overlap) and a soft nuclear-occupancy map, (S, S) each.

    `compiled` paints with `render_kernels` (bit-identical) when numba is there.
    """
    dna = np.zeros((size, size), np.float32)
    occupancy = np.zeros((size, size), np.float32)
    chrom = texture_bank()["chromatin"]
    rn = cells["nucleus_radius"]
    na = np.sqrt(cells["nucleus_aspect"])
    if compiled and render_kernels.HAS_NUMBA:
        _paint_nuclei_compiled(rng, cells, geom, tile_id, tile_off, dna, occupancy, chrom, rn, na)
        return dna, occupancy
    for i, (nx, ny, ra, rb, ang, bright), (xa, xb, ya, yb) in _painted_nuclei(rng, cells, geom, rn, na, size):
        dx = (np.arange(xa, xb, dtype=np.float32) - nx)[None, :]
        dy = (np.arange(ya, yb, dtype=np.float32) - ny)[:, None]
        c, s = np.cos(ang), np.sin(ang)
        u = (dx * c + dy * s) / ra
        v = (-dx * s + dy * c) / rb
        rho = np.sqrt(u * u + v * v)
        soft = 1.0 / (1.0 + np.exp(np.clip((rho - 1.0) * rb / 0.7, -30, 30)))
        tex = chrom[tile_id[i, 0], (np.arange(ya, yb)[:, None] + int(tile_off[i, 0])) % TILE_THETA,
                    (np.arange(xa, xb)[None, :] + int(tile_off[i, 1])) % TILE_R]
        dome = 1.0 - 0.25 * np.clip(rho, 0, 1) ** 2  # nuclei are thicker in the middle
        dna[ya:yb, xa:xb] += bright * soft * dome * np.clip(1.0 + cells["chromatin_texture"][i] * tex, 0.2, None)
        np.maximum(occupancy[ya:yb, xa:xb], soft, out=occupancy[ya:yb, xa:xb])
    return dna, occupancy


def _painted_nuclei(rng: np.random.Generator, cells: dict[str, np.ndarray], geom: "_Geometry", rn: np.ndarray,
                    na: np.ndarray, size: int):
    """(cell index, nucleus, its pixel box) for every nucleus that lands in the field, in the order the
    random draws fix: the numpy and the compiled painting both walk this one sequence."""
    for i in range(len(geom.angle)):
        for nucleus in _nuclei_of_cell(rng, i, cells, geom.nucleus_xy[i], rn[i], na[i], geom.nuc_angle[i]):
            box = _nucleus_box(nucleus[0], nucleus[1], nucleus[2], size)
            if box is not None:
                yield i, nucleus, box


def _nucleus_box(nx: float, ny: float, ra: float, size: int) -> tuple[int, int, int, int] | None:
    """The pixel box (xa, xb, ya, yb) a nucleus paints: its major radius + 3 px, cut to the field; None
    when it lies outside. One definition for the numpy and the compiled painting, which must agree."""
    reach_n = int(np.ceil(ra + 3))
    xa, xb = max(int(nx) - reach_n, 0), min(int(nx) + reach_n + 1, size)
    ya, yb = max(int(ny) - reach_n, 0), min(int(ny) + reach_n + 1, size)
    return None if xa >= xb or ya >= yb else (xa, xb, ya, yb)


def _paint_nuclei_compiled(rng: np.random.Generator, cells: dict[str, np.ndarray], geom: _Geometry, tile_id: np.ndarray,
                           tile_off: np.ndarray, dna: np.ndarray, occupancy: np.ndarray, chrom: np.ndarray,
                           rn: np.ndarray, na: np.ndarray) -> None:
    """`_paint_nuclei`'s loop with the pixel work compiled: the nuclei (and their random draws) in the
    same order, each box's arithmetic in `render_kernels`, the `exp` by numpy on all boxes at once."""
    size = dna.shape[0]
    boxes: list[tuple] = []
    for i, (nx, ny, ra, rb, ang, bright), (xa, xb, ya, yb) in _painted_nuclei(rng, cells, geom, rn, na, size):
        # numpy computed `arange(float32) - centre` in float32 when the centre was a Python float
        boxes.append((xa, xb, ya, yb, float(nx), float(ny), isinstance(nx, float) and not isinstance(nx, np.floating),
                      np.cos(ang), np.sin(ang), float(ra), float(rb), float(bright), i))
    if not boxes:
        return
    xa, xb, ya, yb, nx, ny, coords32, cos_n, sin_n, ra, rb, bright, cell = (np.array(col) for col in zip(*boxes))
    area = (xb - xa) * (yb - ya)
    offset = np.concatenate([[0], np.cumsum(area)[:-1]]).astype(np.int64)
    rho = np.empty(int(area.sum()), np.float64)
    arg = np.empty_like(rho)
    ints = [np.ascontiguousarray(a, np.int64) for a in (xa, xb, ya, yb)]
    render_kernels.compiled("nucleus_boxes")(rho, arg, offset, *ints, nx.astype(np.float64), ny.astype(np.float64),
                                 coords32.astype(np.bool_), cos_n.astype(np.float64), sin_n.astype(np.float64),
                                 ra.astype(np.float64), rb.astype(np.float64))
    render_kernels.compiled("paint_nucleus_boxes")(dna, occupancy, rho, np.exp(arg), offset, *ints, cell.astype(np.int64),
                                       bright.astype(np.float64), chrom, np.ascontiguousarray(tile_id[:, 0], np.int64),
                                       tile_off[:, 0].astype(np.int64), tile_off[:, 1].astype(np.int64),
                                       np.ascontiguousarray(cells["chromatin_texture"], np.float32))


@dataclass
class _CytoplasmPixels:
    """Per foreground pixel: owning cell, position, and distances the cytoplasm stains depend on."""

    lab: np.ndarray  # owning cell
    px: np.ndarray  # x, y (px)
    py: np.ndarray
    free: np.ndarray  # distance inside the free cell edge (px, approximate)
    junction: np.ndarray  # distance to the neighbour's edge (px, approximate)
    edge: np.ndarray  # thin-lamella factor at the free edge, 0..1
    overlap: np.ndarray  # 1.3 where two cells overlap (thicker cytoplasm), else 1
    warp_a: np.ndarray  # smooth displacements that bend straight fibres (px)
    warp_b: np.ndarray
    dist: np.ndarray  # distance from the nucleus centre (px)
    phi: np.ndarray  # angle around the nucleus centre
    out_nuc: np.ndarray  # distance outside the nucleus radius (px)
    nuclear: np.ndarray  # 1 over a nucleus, 0 in the cytoplasm

    @classmethod
    def of(cls, fg: np.ndarray, cells: dict[str, np.ndarray], centres: np.ndarray, geom: _Geometry,
           terr: _Territories, occupancy: np.ndarray, tile_id: np.ndarray, size: int) -> "_CytoplasmPixels":
        bank = texture_bank()
        lab = terr.label.ravel()[fg]
        py, px = np.divmod(fg, size)
        px = px.astype(np.float32)
        py = py.astype(np.float32)
        rho = terr.best.ravel()[fg]
        second = terr.second.ravel()[fg]
        rcell = cells["cell_radius"][lab].astype(np.float32)
        free = (1.0 - rho) * rcell
        ndx, ndy = px - geom.nucleus_xy[lab, 0], py - geom.nucleus_xy[lab, 1]
        dist = np.sqrt(ndx * ndx + ndy * ndy)
        return cls(
            lab=lab, px=px, py=py, free=free,
            junction=0.5 * (np.minimum(second, 2.0) - rho) * rcell,
            edge=np.clip(free / 3.0, 0, 1) ** 0.7,
            overlap=np.where(second < 1.0, 1.3, 1.0).astype(np.float32),
            warp_a=3.0 * _sample(bank["warp"], tile_id[lab, 0], py, px),
            warp_b=3.0 * _sample(bank["warp"], tile_id[lab, 0], px + 101, py + 57),
            dist=dist, phi=np.arctan2(ndy, ndx),
            out_nuc=np.clip(dist - cells["nucleus_radius"][lab], 0, None),
            nuclear=occupancy.ravel()[fg],
        )


def _paint_tubulin(p: _CytoplasmPixels, cells: dict[str, np.ndarray], geom: _Geometry, tile_id: np.ndarray,
                   tile_off: np.ndarray, mesh_angle: np.ndarray) -> np.ndarray:
    """β-tubulin per foreground pixel: radial fibres and a mesh, bundles, perinuclear ring, aggresome."""
    bank = texture_bank()
    lab = p.lab
    twist = 0.004 * (tile_off[lab, 2] - 500) / 500
    a_idx = (p.phi + twist * p.dist + 0.04 * p.warp_a) * (TILE_THETA / (2 * np.pi)) + tile_off[lab, 3]
    b_idx = 0.6 * p.dist + tile_off[lab, 4]
    radial = _sample(bank["fibre"], tile_id[lab, 1], a_idx, b_idx)
    c_mesh, s_mesh = np.cos(mesh_angle).astype(np.float32), np.sin(mesh_angle).astype(np.float32)
    wx, wy = p.px + p.warp_a, p.py + p.warp_b
    mesh = _sample(bank["fibre"], tile_id[lab, 0], 0.8 * (wx * c_mesh[lab] + wy * s_mesh[lab]) + tile_off[lab, 5],
                   0.8 * (wy * c_mesh[lab] - wx * s_mesh[lab]))
    f = cells["tubulin_fibre"][lab]
    bund = cells["tubulin_bundle"][lab]
    tex = (1 - f) + f * (0.4 * radial + 0.6 * mesh)
    tex = (1 - 0.5 * bund) * tex + 2.0 * bund * _sample(bank["bundle"], tile_id[lab, 1], a_idx * 0.5, b_idx + 37)
    peri = 1.0 + cells["tubulin_perinuclear"][lab] * np.exp(-p.out_nuc / TUBULIN_PERINUCLEAR_DECAY_PX)
    shadow = 1.0 - TUBULIN_NUCLEAR_SHADOW * p.nuclear
    stain = shadow * peri * tex
    aggresome = cells["tubulin_aggresome"]
    if np.any(aggresome != 0):  # most treatments have none; adding its exact zeros would change no pixel
        rn = cells["nucleus_radius"][lab]
        agg_t = geom.off_t[lab] + np.pi + 0.5  # the aggresome sits beside the nucleus, away from its offset
        agg_x = geom.nucleus_xy[lab, 0] + (rn + 3) * np.cos(agg_t)
        agg_y = geom.nucleus_xy[lab, 1] + (rn + 3) * np.sin(agg_t)
        stain = stain + aggresome[lab] * 3.0 * np.exp(-((p.px - agg_x) ** 2 + (p.py - agg_y) ** 2) / (2 * 4.0**2))
    return cells["tubulin_intensity"][lab] * p.edge * p.overlap * stain / 1.6


def _paint_actin(p: _CytoplasmPixels, cells: dict[str, np.ndarray], centres: np.ndarray, geom: _Geometry,
                 tile_id: np.ndarray, tile_off: np.ndarray) -> np.ndarray:
    """F-actin per foreground pixel: cortex, stress fibres along the cell's long axis, puncta."""
    bank = texture_bank()
    lab = p.lab
    c, s = np.cos(geom.angle)[lab], np.sin(geom.angle)[lab]  # per cell, then per pixel: the same values
    cx, cy = p.px - centres[lab, 0], p.py - centres[lab, 1]
    along = cx * c + cy * s
    across = -cx * s + cy * c
    stress = _sample(bank["fibre"], tile_id[lab, 2], (across + p.warp_a) * 1.6 + tile_off[lab, 5],
                     0.5 * (along + p.warp_b) + 91)
    fa = cells["actin_fibres"][lab]
    cortex = cells["actin_cortex"][lab] * (np.exp(-p.free / 1.8) + 0.35 * np.exp(-p.junction / 1.5))
    body = (0.55 + cortex) * ((1 - fa) + fa * stress)
    punct = cells["actin_puncta"][lab]
    dots = _sample(bank["puncta"], tile_id[lab, 2], p.py + tile_off[lab, 0], p.px + tile_off[lab, 1])
    body = (1 - 0.75 * punct) * body + 2.2 * punct * dots
    shadow = 1.0 - ACTIN_NUCLEAR_SHADOW * p.nuclear
    return cells["actin_intensity"][lab] * p.edge * p.overlap * shadow * body / 1.2


HARMONICS: tuple[int, ...] = (2, 3, 4, 5, 7)  # boundary ruffle frequencies


def _ruffle(c: np.ndarray, s: np.ndarray, weights: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Σ_j w_j cos(k_j θ + φ_j) from cos θ, sin θ, using complex powers instead of trig per pixel."""
    out = np.zeros_like(c)
    pr, pi = c, s  # (cos θ + i sin θ)^1
    power = 1
    for w, phase, kk in zip(weights, phases, HARMONICS):
        while power < kk:
            pr, pi = pr * c - pi * s, pr * s + pi * c
            power += 1
        out += w * (pr * np.cos(phase) - pi * np.sin(phase))  # cos(kθ + φ)
    return out


def _nuclei_of_cell(
    rng: np.random.Generator, i: int, cells: dict[str, np.ndarray], xy: np.ndarray,
    rn: float, na: float, ang: float,
) -> list[tuple[float, float, float, float, float, float]]:
    """(x, y, semi-major, semi-minor, angle, brightness) of each nucleus of cell i; primary first."""
    bright = float(cells["dna_intensity"][i])
    out = [(float(xy[0]), float(xy[1]), rn * na, rn / na, ang, bright)]
    n_extra = int(cells["n_nuclei"][i]) - 1
    for j in range(n_extra):
        t = ang + np.pi * (j + 1) * 2 / (n_extra + 1) + rng.normal(0, 0.3)
        rj = rn * rng.uniform(0.75, 1.0)
        d = 1.1 * (rn * na + rj * na) + 3.0 + rng.uniform(0, 3)  # separate nuclei, as segmentation sees them
        out.append((xy[0] + d * np.cos(t), xy[1] + d * np.sin(t), rj * na, rj / na, ang + rng.normal(0, 0.5),
                    bright * rng.uniform(0.85, 1.05)))
    if cells["micronucleated"][i]:
        for _ in range(int(rng.integers(2, 5))):
            t = rng.uniform(0, 2 * np.pi)
            rm = rng.uniform(1.8, 3.0)
            d = rn * na + rm + 3.0 + rng.uniform(0, 4)
            out.append((xy[0] + d * np.cos(t), xy[1] + d * np.sin(t), rm, rm * 0.85, 0.0, bright * 1.2))
    return out


def _microscope(rng: np.random.Generator, image: np.ndarray, *, config: RenderConfig, plate: PlateEffect) -> np.ndarray:
    """Illumination, blur, exposure, background, noise and 8-bit quantisation: (3, S, S) float → uint8."""
    return np.clip(_exposed(rng, image, config=config, plate=plate) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _exposed(rng: np.random.Generator, image: np.ndarray, *, config: RenderConfig, plate: PlateEffect) -> np.ndarray:
    """What the camera records before 8-bit quantisation, in fractions of 255 (unclipped; for calibration)."""
    size = image.shape[-1]
    t = (np.arange(size, dtype=np.float32) / (size - 1) - 0.5)
    gx, gy = config.illumination * rng.uniform(-1, 1, 2)
    illum = 1.0 + gx * t[None, :] + gy * t[:, None] - config.vignetting * 2 * (t[None, :] ** 2 + t[:, None] ** 2)
    out = np.empty_like(image)
    for ch in range(3):
        blurred = ndi.gaussian_filter(image[ch], config.psf_sigma[ch], mode="nearest")
        out[ch] = (blurred * (plate.gain[ch] * config.exposure[ch]) + config.background[ch] + plate.offset[ch]) * illum
    sd = np.sqrt(np.clip(out, 0, None) * config.shot_noise + config.read_noise**2)
    out += sd * rng.standard_normal(out.shape, dtype=np.float32)
    return out


def crop_cells(field_image: np.ndarray, centres: np.ndarray, *, crop_size: int = CROP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, 3, crop, crop) around every centre whose crop lies fully inside the field.

    Returns the crops and the indices of the centres used. The centre pixel of a crop
    is `crop_size // 2`, like crops cut around CellProfiler nucleus centres.
    """
    half = crop_size // 2
    size_y, size_x = field_image.shape[-2:]
    cx = np.round(centres[:, 0]).astype(int)
    cy = np.round(centres[:, 1]).astype(int)
    keep = np.flatnonzero((cx >= half) & (cy >= half) & (cx + crop_size - half <= size_x) & (cy + crop_size - half <= size_y))
    windows = np.lib.stride_tricks.sliding_window_view(field_image, (crop_size, crop_size), axis=(1, 2))
    crops = windows[:, cy[keep] - half, cx[keep] - half]  # (3, n, crop, crop)
    return np.ascontiguousarray(crops.transpose(1, 0, 2, 3)), keep
