"""Building blocks shared by every model: up-sampling and down-sampling conv blocks.

The generator of CP2Image, the decoder of the VAE baselines and the LSGAN generator
are all `UpBlock` stacks; the discriminator and the VAE encoder are `DownBlock`
stacks. Keeping one definition means the baselines of Table 1 differ from
CP2Image only in what goes in and which losses train them.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from cp2image.models.padding import check_padding_mode

LEAKY_SLOPE = 0.2


def same_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding_mode: str) -> torch.Tensor:
    """'Same' convolution with odd kernel k, the margin filled as `padding_mode` says (as nn.Conv2d does)."""
    h = weight.shape[-1] // 2
    if padding_mode == "zeros":
        return F.conv2d(x, weight, bias, padding=h)
    return F.conv2d(F.pad(x, (h, h, h, h), mode="replicate"), weight, bias)


def upsample_sizes(image_size: int, n_blocks: int) -> list[int]:
    """Spatial sizes from the dense layer's grid up to `image_size`, halving with ceil.

    68 with 4 blocks gives [5, 9, 17, 34, 68]: each block up-samples to the next size,
    so any crop size works without cropping or padding tricks.
    """
    if image_size < 2 ** n_blocks:
        raise ValueError(f"image_size {image_size} is too small for {n_blocks} up-sampling blocks")
    sizes = [int(image_size)]
    for _ in range(n_blocks):
        sizes.insert(0, math.ceil(sizes[0] / 2))
    return sizes


def pooled_size(image_size: int, n_blocks: int) -> int:
    """Spatial size after `n_blocks` 2×2 poolings (floor, as AvgPool2d does)."""
    size = int(image_size)
    for _ in range(n_blocks):
        size //= 2
    if size < 1:
        raise ValueError(f"image_size {image_size} is too small for {n_blocks} pooling blocks")
    return size


def scaled_channels(base_filters: int, multipliers: list[float] | tuple[float, ...]) -> list[int]:
    """Channel counts `base_filters × m`, at least 1 each."""
    return [max(1, int(round(base_filters * m))) for m in multipliers]


class UpBlock(nn.Module):
    """conv(k) → batch norm → LeakyReLU → up-sample to `out_size` (one generator block)."""

    def __init__(self, in_ch: int, out_ch: int, *, kernel_size: int, out_size: int,
                 batch_norm: bool = True, mode: str = "nearest", noise: bool = False,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=not batch_norm,
                              padding_mode=check_padding_mode(padding_mode))
        self.norm = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.up = nn.Upsample(size=(out_size, out_size), mode=mode)
        # per-pixel noise (StyleGAN's noise injection): s_c · n added before the activation, one N(0, 1) map
        # per image shared by the channels. s starts at 0, so a warm start draws the source's images exactly.
        self.noise_strength = nn.Parameter(torch.zeros(out_ch)) if noise else None
        self._folded: dict[str, object] = {}  # inference-only cache, never saved (see folded_conv_norm)

    def forward(self, x: torch.Tensor, noise_map: torch.Tensor | None = None) -> torch.Tensor:
        """`noise_map` (B, 1, h, w) at the convolution's resolution; None draws the zero-noise image."""
        if noise_map is not None:
            if self.noise_strength is None:
                raise ValueError("this block has no noise input")
            y = self.norm(self.conv(x)) + self.noise_strength.view(1, -1, 1, 1) * noise_map.to(x.dtype)
            return self.up(self.act(y))
        if self.inference_ready():
            # inference: batch norm with running statistics is an affine map per channel, so it
            # folds into the convolution (one pass less); training and gradients take the path below
            weight, bias, _ = self.inference_conv()
            y = F.leaky_relu(same_conv2d(x, weight, bias, self.conv.padding_mode), LEAKY_SLOPE, inplace=True)
            return self.up(y)
        return self.up(self.act(self.norm(self.conv(x))))  # (B, out_ch, out_size, out_size)

    def inference_ready(self) -> bool:
        """True in eval mode without gradients, where the folded (and fused) inference path is exact."""
        return (not self.training and not torch.is_grad_enabled()
                and (_foldable(self.norm) or isinstance(self.norm, nn.Identity)))

    def inference_conv(self) -> tuple[torch.Tensor, torch.Tensor | None, tuple | None]:
        """Weight and bias of conv → norm as one convolution (the norm folded in when there is
        one), and the key of the tensors they derive from (None: not cacheable)."""
        if isinstance(self.norm, nn.Identity):
            return self.conv.weight, self.conv.bias, tensors_key(self.conv.weight, self.conv.bias)
        entry = _folded_entry(self.conv, self.norm, self._folded)
        return entry["weight"], entry["bias"], entry["key"]

    def doubling_mode(self, in_size: int) -> str | None:
        """The up-sampling's mode when it is an exact 2× (in_size → 2·in_size) that
        `upsample2x_conv2d` can fuse into the next convolution; None otherwise."""
        mode = self.up.mode
        size = self.up.size if isinstance(self.up.size, tuple) else (self.up.size, self.up.size)
        if mode in ("bilinear", "nearest") and not self.up.align_corners and size == (2 * in_size, 2 * in_size):
            return mode
        return None


def _foldable(norm: nn.Module) -> bool:
    return isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None and norm.running_var is not None


def folded_conv_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``norm(conv(x))`` as one convolution, cached in `cache` (see `_folded_entry`)."""
    entry = _folded_entry(conv, norm, cache)
    return entry["weight"], entry["bias"]


def _folded_entry(conv: nn.Conv2d, norm: nn.BatchNorm2d, cache: dict) -> dict:
    """{key, weight, bias} of ``norm(conv(x))`` as one convolution, for eval mode without gradients.

    BatchNorm in eval mode is y = (x − mean) · γ / √(var + ε) + β per channel, so
    conv → norm equals a convolution with weight·s and bias (b − mean)·s + β, s = γ / √(var + ε).
    The result is cached and rebuilt whenever any source tensor changes (training steps,
    ``load_state_dict``, ``.to()``), keyed by each tensor's storage, version and dtype; it is
    a plain attribute, not a parameter or buffer, so the weight format is unchanged. Each
    rebuild is a new entry stored in one assignment, so threads sharing the model (app
    sessions) never read a half-built one.
    """
    key = tensors_key(conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean, norm.running_var)
    entry = cache.get("entry")
    if key is None or entry is None or entry["key"] != key:
        with torch.no_grad():
            scale = torch.rsqrt(norm.running_var + norm.eps)
            if norm.weight is not None:
                scale = scale * norm.weight
            shift = -norm.running_mean * scale
            if conv.bias is not None:
                shift = shift + conv.bias * scale
            if norm.bias is not None:
                shift = shift + norm.bias
            weight = (conv.weight * scale.reshape(-1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
        entry = {"key": key, "weight": weight, "bias": shift}
        if key is not None:
            cache["entry"] = entry
    return entry


def tensors_key(*tensors: torch.Tensor | None) -> tuple | None:
    """Identity of the tensors' current values (storage, version, dtype, device), for caches
    of derived weights; None when a tensor has no version counter (made under inference_mode)."""
    try:
        return tuple(None if t is None else (t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
    except RuntimeError:
        return None


# ----------------------------------------------------------------------------- 2× up-sampling fused into a convolution


def _doubling_taps(kernel_size: int, mode: str) -> tuple[torch.Tensor, int]:
    """1-D taps of "2× up-sample, then a same-padded convolution" as seen from the low-res grid.

    Returns (A, P): output sample 2i+p of the convolution reads up-sampled samples
    u[2i+p+t], t ∈ [−h, h] (h = k // 2), and u[2i+p+t] = Σ_d A[p, t+h, d] · x[i+d−P] in the
    interior. Bilinear (align_corners=False) at exactly 2×: u[2j] = ¼x[j−1] + ¾x[j],
    u[2j+1] = ¾x[j] + ¼x[j+1]; nearest: u[2j+r] = x[j]. Its edge clamping is the same as
    extending x by replicating its edge, so the formula holds everywhere on an x padded that way.
    """
    h = kernel_size // 2
    terms: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for p in (0, 1):
        for t in range(-h, h + 1):
            s = p + t
            q, r = s // 2, s % 2
            if mode == "nearest":
                terms[p, t] = [(q, 1.0)]
            elif r == 0:
                terms[p, t] = [(q - 1, 0.25), (q, 0.75)]
            else:
                terms[p, t] = [(q, 0.75), (q + 1, 0.25)]
    pad = max(abs(d) for taps in terms.values() for d, _ in taps)
    taps = torch.zeros(2, 2 * h + 1, 2 * pad + 1, dtype=torch.float64)
    for (p, t), pairs in terms.items():
        for d, c in pairs:
            taps[p, t + h, d + pad] += c
    return taps, pad


def polyphase_conv_params(weight: torch.Tensor, bias: torch.Tensor | None, mode: str
                          ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Weight (4·O, C, D, D), bias and padding of one convolution on the low-res grid whose
    4 output phases (channel (2·py + px)·O + o) are conv(up2×(x), weight) at (2i+py, 2j+px).

    Computed in float64 from the given weight. The multiply-adds equal those of the original
    convolution at bilinear mode (D = k), so the fused layer does no more arithmetic; it runs
    faster because O·4 output channels on a quarter of the pixels suit the CPU kernels better
    than few channels on many pixels, and the up-sampled tensor is never written.
    """
    taps, pad = _doubling_taps(weight.shape[-1], mode)
    w = weight.detach().to(torch.float64)
    poly = torch.einsum("ocyx,pyY,qxX->pqocYX", w, taps, taps)  # (2, 2, O, C, D, D)
    out_ch = weight.shape[0]
    poly = poly.reshape(4 * out_ch, weight.shape[1], *poly.shape[-2:]).to(weight.dtype)
    poly = poly.contiguous(memory_format=torch.channels_last)
    return poly, None if bias is None else bias.detach().repeat(4), pad


def _margin_kernels(weight: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """What the replicated margin added, as 1-D kernels on the low-res phase grid.

    Returns (K, G, m), m = ⌈h/2⌉ phase rows (columns) along each edge that the margin reaches:
    - K (4 · m · 4·O, C, D): a grouped `conv1d` over the 4 replicate-padded edge lines of the
      input (top row, bottom row, left column, right column; groups in that order). Output
      channel (edge, q, py, px, o) is the amount to subtract at phase row (top/bottom) or
      column (left/right) q of the m nearest to that edge, counted from the top (left).
    - G (4, C, m, 4·O, m): the left and right lines also run past the image's top and bottom,
      into corner blocks that the top and bottom margins already hold; what they took from
      there is a multiple of the corner pixel (top-left, bottom-left, top-right, bottom-right),
      G[corner, c, q, channel, i] for the m phase rows i nearest to that corner, to be taken
      off K's result again.

    Why 1-D: an output row r < h reads the kernel rows t_y < −r from the margin above, and
    the replicated margin holds the top edge row of the up-sampled image there, itself a 2×
    up-sampling of the input's top row (so the same polyphase taps apply along it).
    """
    taps, pad = _doubling_taps(weight.shape[-1], mode)
    w = weight.detach().to(torch.float64)
    out_ch, in_ch, k = w.shape[0], w.shape[1], w.shape[-1]
    h, m = k // 2, (k // 2 + 1) // 2
    # kernel rows (columns) that fall beyond an edge for the output row (column) r from it
    above, below = w.cumsum(2), w.flip(2).cumsum(2).flip(2)  # Σ of kernel rows 0..i, i..k−1
    before, after = w.cumsum(3), w.flip(3).cumsum(3).flip(3)
    reach = {
        "top": lambda r: above[:, :, h - 1 - r, :],  # (O, C, k) along the row
        "bottom": lambda r: below[:, :, h + 1 + r, :],
        "left": lambda r: before[:, :, :, h - 1 - r],  # (O, C, k) along the column
        "right": lambda r: after[:, :, :, h + 1 + r],
    }
    kernels = torch.zeros(4, m, 2, 2, out_ch, in_ch, 2 * pad + 1, dtype=torch.float64)
    corners = torch.zeros(4, m, 2, 2, out_ch, in_ch, m, dtype=torch.float64)  # (corner, q, py, px, o, c, i)
    for g, edge in enumerate(("top", "bottom", "left", "right")):
        for q in range(m):
            for across in (0, 1):  # the phase across the edge (py for top/bottom, px for left/right)
                r = 2 * q + across if edge in ("top", "left") else 2 * (m - q) - 1 - across  # from the edge
                if r >= h:
                    continue
                line = reach[edge](r)  # (O, C, k)
                for along in (0, 1):
                    py, px = (across, along) if edge in ("top", "bottom") else (along, across)
                    kernels[g, q, py, px] = torch.einsum("oct,td->ocd", line, taps[along])
                    if edge in ("left", "right"):
                        top_corner, bottom_corner = _corner_share(line, along, h, m)
                        corners[2 * (g - 2), q, py, px] = top_corner
                        corners[2 * (g - 2) + 1, q, py, px] = bottom_corner
    kernels = kernels.reshape(4 * m * 4 * out_ch, in_ch, 2 * pad + 1).to(weight.dtype)
    corners = corners.reshape(4, m, 4 * out_ch, in_ch, m).permute(0, 3, 1, 2, 4).contiguous().to(weight.dtype)
    return kernels, corners, m


def _corner_share(line: torch.Tensor, along: int, h: int, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(O, C, m) multiples of the top and bottom corner pixels that a left/right edge line's
    replicate-padded convolution took from beyond the top and bottom edges, at the m phase
    rows nearest to each (top: i = 0..m−1 from the top; bottom: rows n−m..n−1).

    At output row y = 2i + along that is Σ_{t < −y} line[t]: the kernel taps above the image.
    """
    first = line.cumsum(-1)  # Σ line[0..j]
    last = line.flip(-1).cumsum(-1).flip(-1)  # Σ line[j..]
    top = torch.zeros(*line.shape[:2], m, dtype=line.dtype)
    bottom = torch.zeros_like(top)
    for i in range(m):
        y = 2 * i + along  # output rows from the top edge
        if y < h:
            top[..., i] = first[..., h - 1 - y]
        s = 2 * (m - 1 - i) + 1 - along  # output rows from the bottom edge, for phase row n − m + i
        if s < h:
            bottom[..., i] = last[..., h + 1 + s]
    return top, bottom


def fused_doubling_params(weight: torch.Tensor, bias: torch.Tensor | None, mode: str,
                          cache: dict, source_key: tuple | None = None, padding_mode: str = "zeros") -> dict:
    """`polyphase_conv_params` and, for zero padding, `_margin_kernels` of (weight, bias), cached in
    `cache` until `source_key` changes: by default the identity of weight and bias (as in
    `folded_conv_norm`); a folded weight passes the key of the tensors it was folded from. None:
    never cached. Replicate padding needs no margin correction, so it builds no margin kernels."""
    source_key = tensors_key(weight, bias) if source_key is None else source_key
    key = (mode, padding_mode, source_key)
    entry = cache.get("entry")
    if source_key is None or entry is None or entry["key"] != key:
        poly, poly_bias, pad = polyphase_conv_params(weight, bias, mode)
        margins, corners, m = _margin_kernels(weight, mode) if padding_mode == "zeros" else (None, None, 0)
        entry = {"key": key, "weight": poly, "bias": poly_bias, "pad": pad, "margins": margins,
                 "corners": corners, "m": m}
        if source_key is not None:
            cache["entry"] = entry  # one assignment: threads sharing the model never see half an entry
    return entry


def upsample2x_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *,
                      mode: str, cache: dict | None = None, source_key: tuple | None = None,
                      activation: Callable[..., torch.Tensor] | None = None,
                      padding_mode: str = "zeros") -> torch.Tensor:
    """``same_conv2d(interpolate(x, size=2·(H, W), mode), weight, bias, padding_mode)`` without
    building the up-sampled tensor (inference only; equal up to float round-off).

    How: on x padded by replicating its edge, the up-sampling followed by the convolution is
    one convolution with 4·O output channels (`polyphase_conv_params`), whose channels are the
    4 phases of the 2× grid. That equals the convolution of the up-sampled image padded by
    *replicating* its edge: exactly the convolution asked for with ``padding_mode="replicate"``.
    With zero padding, before the phases are interleaved, what the replicated margin added is
    subtracted from the phase rows and columns along each edge, with one grouped 1-D
    convolution of the 4 edge lines (`_margin_kernels`). Few, large operations: each one is a
    synchronisation point for torch's intra-op threads, which cost more than the arithmetic on
    a busy machine.

    `activation(src, out=dst)` (an element-wise function with an ``out`` argument, e.g.
    `torch.sigmoid`) is applied in place to the interleaved result.
    """
    batch, _, height, width = x.shape
    out_ch = weight.shape[0]
    params = fused_doubling_params(weight, bias, mode, {} if cache is None else cache, source_key, padding_mode)
    pad, m = params["pad"], params["m"]
    if min(height, width) < 2 * pad + 1:  # the kernel reaches past both edges: do it plainly
        y = same_conv2d(F.interpolate(x, size=(2 * height, 2 * width), mode=mode), weight, bias, padding_mode)
        return y if activation is None else activation(y, out=y)
    xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    phases = F.conv2d(xp, params["weight"], params["bias"])  # (B, 4·O, H, W), channel (2·py + px)·O + o
    if padding_mode == "zeros":
        _subtract_margins(phases, xp, params["margins"], params["corners"], pad, m)
    # interleave the phases: (B, H, py, W, px, O) is the channels-last 2× grid
    if phases.is_contiguous(memory_format=torch.channels_last):
        grid = phases.permute(0, 2, 3, 1).view(batch, height, width, 2, 2, out_ch)
    else:
        grid = phases.view(batch, 2, 2, out_ch, height, width).permute(0, 4, 5, 1, 2, 3)
    grid = grid.permute(0, 1, 3, 2, 4, 5)
    out = grid.reshape(batch, 2 * height, 2 * width, out_ch)  # one copy
    if activation is not None:
        activation(out, out=out)  # in place on contiguous memory (on the strided view it is 3-5× slower)
    return out.permute(0, 3, 1, 2)


def _subtract_margins(phases: torch.Tensor, xp: torch.Tensor, kernels: torch.Tensor, corners: torch.Tensor,
                      pad: int, m: int) -> None:
    """Subtract the replicated margin's share from the phase rows/columns along each edge, in
    place, in few large operations (one stack, one grouped conv1d, two subtractions for
    kernels up to 5 × 5); the corner terms work on (B, C)-sized tensors, which torch runs
    without waking its other intra-op threads."""
    batch, channels = xp.shape[:2]
    height, width = xp.shape[2] - 2 * pad, xp.shape[3] - 2 * pad
    bottom_row, right_col = pad + height - 1, pad + width - 1
    rows = [xp[:, :, pad, :], xp[:, :, bottom_row, :]]
    cols = [xp[:, :, :, pad], xp[:, :, :, right_col]]
    if height == width:
        corr = F.conv1d(torch.stack(rows + cols, dim=1).view(batch, 4 * channels, -1), kernels, groups=4)
        corr = corr.view(batch, 4, m, -1, width)
        across_rows, across_cols = corr[:, :2], corr[:, 2:]  # (B, 2, m, 4·O, W): top/bottom; left/right
    else:
        half = kernels.shape[0] // 2
        across_rows = F.conv1d(torch.stack(rows, 1).view(batch, 2 * channels, -1), kernels[:half],
                               groups=2).view(batch, 2, m, -1, width)
        across_cols = F.conv1d(torch.stack(cols, 1).view(batch, 2 * channels, -1), kernels[half:],
                               groups=2).view(batch, 2, m, -1, height)
    corner_px = torch.stack([xp[:, :, pad, pad], xp[:, :, bottom_row, pad],
                             xp[:, :, pad, right_col], xp[:, :, bottom_row, right_col]], dim=1)  # (B, 4, C)
    excess = torch.einsum("bkc,kcqfi->kbqfi", corner_px, corners)  # (4, B, m, 4·O, m)
    across_cols[:, 0, ..., :m].sub_(excess[0])  # left column, top corner
    across_cols[:, 0, ..., height - m:].sub_(excess[1])
    across_cols[:, 1, ..., :m].sub_(excess[2])  # right column
    across_cols[:, 1, ..., height - m:].sub_(excess[3])
    if m == 1:  # kernels up to 5 × 5: one phase row per edge, both edges in one strided view
        phases[:, :, ::height - 1, :].sub_(across_rows[:, :, 0].transpose(1, 2))  # (B, 4·O, 2, W)
        phases[:, :, :, ::width - 1].sub_(across_cols[:, :, 0].permute(0, 2, 3, 1))  # (B, 4·O, H, 2)
        return
    phases[:, :, :m, :].sub_(across_rows[:, 0].transpose(1, 2))  # (B, 4·O, m, W)
    phases[:, :, height - m:, :].sub_(across_rows[:, 1].transpose(1, 2))
    phases[:, :, :, :m].sub_(across_cols[:, 0].permute(0, 2, 3, 1))  # (B, 4·O, H, m)
    phases[:, :, :, width - m:].sub_(across_cols[:, 1].permute(0, 2, 3, 1))


class DownBlock(nn.Module):
    """conv(k) → batch norm → LeakyReLU → 2×2 average pooling (one discriminator block).

    `spectral=True` wraps the convolution in spectral normalisation (Miyato et al. 2018),
    which the paper adds to stabilise discriminator training.
    """

    def __init__(self, in_ch: int, out_ch: int, *, kernel_size: int, spectral: bool,
                 batch_norm: bool = True) -> None:
        super().__init__()
        conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
        self.conv = spectral_norm(conv) if spectral else conv
        self.norm = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))  # (B, out_ch, H // 2, W // 2)


def parameter_count(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; spectral-norm power-iteration vectors are buffers."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
