r"""Random warps of a whole batch on the training device, with distance maps recomputed exactly.

Flips and quarter turns move cached distance maps exactly (:mod:`bl_tutorial.data.transforms`);
any other warp does not. A rotation by 10 degrees, a zoom or an elastic deformation moves
the boundary set onto new voxels and changes the distances (a zoom by 1.2 makes every
distance 1.2 times longer), so a map warped like an image is no longer the map of the
warped labels. :class:`BatchWarp` warps a batch as the training loop receives it and
recomputes the maps from the warped labels with
:func:`~bl_tutorial.distance_torch.batch_distance_maps` on the batch's device;
:func:`warp_error` measures how wrong the shortcut (warping the cached maps) would be.

The warp maps every output pixel to a source position, in physical units (each item's
``spacing``), so that a rotation is a true rotation of the anatomy even with anisotropic
pixels: source = zoom x rotation x shear x (output - centre) + centre + shift, plus an
optional smooth elastic displacement. The image is sampled bilinearly, the labels and the
region of interest with nearest neighbours (the labels are warped as integers and made
one-hot again). Outside the source image the image is 0, the label background (0) and
the region of interest False. Volumes (B, C, D, H, W) are warped in-plane: one 2D warp per
item, the same for every slice; their maps are recomputed in 3D.

In a training loop, after the batch has been moved to the device::

    warp = BatchWarp(rotation=15.0, scale=0.1)
    generator = torch.Generator().manual_seed(seed)  # a CPU generator: the same warps on any device
    for batch in loader:
        batch = {key: v.to(device) if torch.is_tensor(v) else v for key, v in batch.items()}
        batch = warp(batch, generator)

The recomputed maps are those of the warped labels *at the training resolution*: a DRIVE
data set built with ``maps="native"`` (maps of the native annotation, resampled) gets, after
a warp, the maps of its resized annotation (as ``maps="resized"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from bl_tutorial._validation import check_choice, check_number
from bl_tutorial.distance import CONVENTIONS
from bl_tutorial.distance_torch import batch_distance_maps
from bl_tutorial.losses import boundary_loss

__all__ = ["BatchWarp", "BATCH_WARPS", "WarpError", "warp_error", "warp_tensor"]

_LIMITS = {"rotation": 180.0, "scale": None, "shear": 60.0, "translation": 1.0, "elastic": None}


@dataclass(frozen=True)
class BatchWarp:
    """A random affine and/or elastic warp of a batch, applied on its device; maps recomputed.

    Every item of a batch gets its own draw. All strengths at 0 give the identity.

    Parameters
    ----------
    rotation : float
        Largest rotation, degrees: the angle is uniform in ``[-rotation, rotation]``.
    scale : float
        Zoom factor drawn log-uniformly in ``[1 / (1 + scale), 1 + scale]``.
    shear : float
        Largest shear angle, degrees (uniform in ``[-shear, shear]``).
    translation : float
        Largest shift along each axis, as a fraction of the image's extent.
    elastic : float
        Largest displacement of the elastic field's control points along each axis, in
        pixels (0: no elastic warp). The field is a bicubic interpolation of random
        displacements on a coarse grid of control points.
    smoothness : float
        Distance between the elastic field's control points, in pixels: larger is smoother.
    convention : {"exact", "official"}
        Convention of the recomputed distance maps.
    maps : {"recompute", "warp"}
        ``"recompute"`` (default): the maps of the warped labels. ``"warp"``: the shortcut
        this module exists to avoid, the cached maps moved like an image (bilinear, edge
        values outside), which are no longer distance maps; kept to measure what it costs.

    Examples
    --------
    >>> import dataclasses, json
    >>> warp = BatchWarp(rotation=10.0, scale=0.0, translation=0.0)
    >>> warp.name
    'warp(rotation=10, scale=0, shear=0, translation=0, elastic=0, smoothness=32, convention=exact)'
    >>> json.loads(json.dumps(dataclasses.asdict(warp)))["rotation"]
    10.0
    """

    rotation: float = 15.0
    scale: float = 0.1
    shear: float = 0.0
    translation: float = 0.05
    elastic: float = 0.0
    smoothness: float = 32.0
    convention: Literal["exact", "official"] = "exact"
    maps: Literal["recompute", "warp"] = "recompute"

    def __post_init__(self):
        for field, limit in _LIMITS.items():
            value = check_number(getattr(self, field), field, minimum=0.0)
            if limit is not None and value > limit:
                raise ValueError(f"{field} must be at most {limit:g}, got {value:g}")
            object.__setattr__(self, field, value)  # plain floats: asdict() stays JSON-serialisable
        object.__setattr__(self, "smoothness", check_number(self.smoothness, "smoothness", minimum=1.0))
        check_choice(self.convention, "convention", CONVENTIONS)
        check_choice(self.maps, "maps", ("recompute", "warp"))

    @property
    def name(self) -> str:
        """A one-line description of the settings, for logs and a run's settings."""
        values = ", ".join(f"{key}={value:g}" for key, value in self._strengths().items())
        maps = "" if self.maps == "recompute" else ", maps=warp"
        return f"warp({values}, convention={self.convention}{maps})"

    @property
    def is_identity(self) -> bool:
        """True when every strength is 0 (the warp changes nothing)."""
        return not any(self._strengths()[key] for key in _LIMITS)

    def _strengths(self) -> dict[str, float]:
        return {key: getattr(self, key) for key in (*_LIMITS, "smoothness")}

    def describe(self) -> str:
        """A sentence for the book and the logs."""
        if self.is_identity:
            return "no warp"
        parts = [
            f"rotations up to {self.rotation:g} deg" if self.rotation else "",
            f"zooms up to x{1 + self.scale:g}" if self.scale else "",
            f"shears up to {self.shear:g} deg" if self.shear else "",
            f"shifts up to {100 * self.translation:g} % of the image" if self.translation else "",
            f"elastic displacements up to {self.elastic:g} px (control points {self.smoothness:g} px apart)"
            if self.elastic
            else "",
        ]
        maps = f"{self.convention} maps recomputed" if self.maps == "recompute" else "cached maps warped like the image"
        return "random " + ", ".join(p for p in parts if p) + f"; {maps}"

    def sampling_grid(
        self, spacing: torch.Tensor, shape: tuple[int, int], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One random draw per item: the ``grid`` of :func:`torch.nn.functional.grid_sample`.

        Parameters
        ----------
        spacing : Tensor, shape (B, 2)
            In-plane pixel size (rows, cols) of each item; the grid is made on its device.
        shape : (int, int)
            Rows and columns of the images.
        generator : torch.Generator, optional
            Source of the random draws (drawn on the generator's device, then moved), so
            that one seed gives one warp on any device.

        Returns
        -------
        Tensor of float32, shape (B, rows, cols, 2): the source (x, y) of every output pixel,
        normalised to [-1, 1] at the image's outer edges (``align_corners=False``).
        """
        spacing = _check_spacing_table(spacing, 2, "spacing")
        spacing = spacing.to(torch.float32 if spacing.device.type == "mps" else torch.float64)  # MPS: no float64
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        (rows, cols), device = shape, spacing.device
        draw_on = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand((len(spacing), 5), generator=generator, device=draw_on)
        u = u.mul(2).sub(1).to(device, spacing.dtype)
        size = torch.tensor([rows, cols], dtype=spacing.dtype, device=device)
        index = torch.stack(
            torch.meshgrid(*[torch.arange(n, dtype=spacing.dtype, device=device) for n in shape], indexing="ij"), -1
        )  # (rows, cols, 2): (row, col)
        physical = (index - (size - 1) / 2) * spacing[:, None, None, :]  # about the centre: (B, rows, cols, 2)
        moved = torch.einsum(
            "bij,bhwj->bhwi", self._linear_part(u) - torch.eye(2, dtype=spacing.dtype, device=device), physical
        )
        shift = self.translation * u[:, 3:5] * spacing * size  # physical
        offset = (moved + shift[:, None, None, :]) / spacing[:, None, None, :]  # source - output, in pixels
        if self.elastic:
            offset = offset + self._elastic_offset(len(spacing), rows, cols, generator, draw_on, offset)
        normalised = (2 * (index + offset) + 1) / size - 1  # (row, col), -1 and 1 at the outer edges
        return normalised.flip(-1).to(torch.float32)  # grid_sample wants (x, y)

    def _linear_part(self, u: torch.Tensor) -> torch.Tensor:
        """zoom x R(angle) x [[1, shear], [0, 1]] (B, 2, 2), acting on physical (y, x), from uniform draws ``u``."""
        angle, shear = math.radians(self.rotation) * u[:, 0], torch.tan(math.radians(self.shear) * u[:, 2])
        zoom = torch.exp(math.log1p(self.scale) * u[:, 1])
        cos, sin = torch.cos(angle), torch.sin(angle)
        return zoom[:, None, None] * torch.stack([cos, cos * shear - sin, sin, sin * shear + cos], -1).view(-1, 2, 2)

    def _elastic_offset(self, batch, rows, cols, generator, draw_on, like: torch.Tensor) -> torch.Tensor:
        """Smooth random displacement (B, rows, cols, 2) in pixels (rows, cols), at most ~``elastic``.

        The control points are drawn on ``draw_on`` and interpolated on ``like``'s device, in its dtype.
        """
        knots = (max(2, math.ceil(rows / self.smoothness) + 1), max(2, math.ceil(cols / self.smoothness) + 1))
        coarse = torch.rand((batch, 2, *knots), generator=generator, device=draw_on).mul(2).sub(1) * self.elastic
        field = F.interpolate(coarse.to(like), size=(rows, cols), mode="bicubic", align_corners=True)
        return field.permute(0, 2, 3, 1)

    def __call__(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """Warp ``batch`` (a collated dict of the training datasets) and recompute its maps.

        ``image`` (B, C, *S) bilinear; ``target`` (B, K, *S) one-hot, via its labels, nearest;
        ``roi`` (B, *S) nearest; ``dist_maps`` recomputed from the warped labels with
        ``spacing`` (B, n) and :attr:`convention`. Other keys are passed on unchanged.
        ``*S`` is (H, W) or (D, H, W) (warped in-plane, the same for every slice).
        """
        image, target, spacing = _check_batch(batch)
        grid = self.sampling_grid(spacing[:, -2:], tuple(image.shape[-2:]), generator)
        labels = warp_tensor(target.argmax(1), grid, "nearest")
        out = dict(batch)
        out["image"] = warp_tensor(image, grid, "bilinear")
        out["target"] = F.one_hot(labels, target.shape[1]).movedim(-1, 1).to(target.dtype)
        if "roi" in batch:
            out["roi"] = warp_tensor(batch["roi"], grid, "nearest")
        if self.maps == "warp":  # the shortcut: maps moved like an image
            out["dist_maps"] = warp_tensor(batch["dist_maps"], grid, "bilinear", padding="border")
        else:
            out["dist_maps"] = batch_distance_maps(labels, target.shape[1], spacing, self.convention)
        return out


def warp_tensor(
    x: torch.Tensor, grid: torch.Tensor, mode: Literal["bilinear", "nearest"], padding: str = "zeros"
) -> torch.Tensor:
    """Sample ``x`` at ``grid`` (B, H, W, 2), ``padding`` outside (zeros, or the edge values with
    ``"border"``); keeps ``x``'s shape and dtype.

    ``x`` is (B, C, H, W) or (B, C, D, H, W) (each slice warped alike) for either mode,
    or, for ``"nearest"``, integer or boolean (B, H, W) or (B, D, H, W) labels.
    """
    dtype, shape = x.dtype, x.shape
    labels = not dtype.is_floating_point
    if labels:
        if mode != "nearest":
            raise ValueError(f"mode must be 'nearest' for {dtype} labels, got {mode!r}")
        x = x.unsqueeze(1)
    work = x.to(grid.dtype)
    if work.ndim == 5:  # (B, C, D, H, W): fold the slices into the batch
        depth = work.shape[2]
        folded = work.movedim(2, 1).reshape(-1, work.shape[1], *work.shape[-2:])
        warped = F.grid_sample(folded, grid.repeat_interleave(depth, 0), mode, padding, align_corners=False)
        warped = warped.reshape(work.shape[0], depth, *warped.shape[1:]).movedim(1, 2)
    else:
        warped = F.grid_sample(work, grid, mode, padding, align_corners=False)
    if labels:
        warped = warped.squeeze(1).round()
    return warped.to(dtype).reshape(shape)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def _check_spacing_table(spacing, ndim: int, name: str) -> torch.Tensor:
    if not isinstance(spacing, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape (B, {ndim}), got {_describe(spacing)}")
    if spacing.ndim != 2 or spacing.shape[1] != ndim:
        raise ValueError(f"{name} must have shape (B, {ndim}), got shape {tuple(spacing.shape)}")
    if not torch.isfinite(spacing).all() or (spacing <= 0).any():
        raise ValueError(f"{name} must be finite and positive, got {spacing.tolist()}")
    return spacing


def _check_batch(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's image, target and spacing, after checking the keys and shapes agree."""
    if not isinstance(batch, dict):
        raise TypeError(f"batch must be a dict with image, target, spacing (and roi), got {type(batch).__name__}")
    missing = [key for key in ("image", "target", "spacing") if key not in batch]
    if missing:
        raise ValueError(f"batch must have the keys image, target and spacing, missing {missing}")
    image, target, spacing = batch["image"], batch["target"], batch["spacing"]
    for key, value in (("image", image), ("target", target)):
        if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point or value.ndim not in (4, 5):
            raise ValueError(
                f"batch['{key}'] must be a float tensor (B, C, H, W) or (B, C, D, H, W), got {_describe(value)}"
            )
    if image.shape[0] != target.shape[0] or image.shape[2:] != target.shape[2:]:
        raise ValueError(
            f"batch['image'] and batch['target'] must share the batch and spatial sizes, "
            f"got {tuple(image.shape)} and {tuple(target.shape)}"
        )
    roi = batch.get("roi")
    if roi is not None and (not isinstance(roi, torch.Tensor) or roi.shape != (image.shape[0], *image.shape[2:])):
        raise ValueError(
            f"batch['roi'] must be a tensor of shape {(image.shape[0], *image.shape[2:])}, got {_describe(roi)}"
        )
    spacing = _check_spacing_table(spacing, image.ndim - 2, "batch['spacing']")
    if len(spacing) != image.shape[0]:
        raise ValueError(f"batch['spacing'] must have one row per item ({image.shape[0]}), got {len(spacing)}")
    return image, target, spacing


@dataclass(frozen=True)
class WarpError:
    """How far a warped cached map is from the map recomputed on the warped labels (:func:`warp_error`)."""

    mean: float  # mean absolute error of the maps inside the image, in the maps' unit
    largest: float  # largest absolute error there
    loss_warped: float  # <c, phi> with the warped cached maps (sum over classes and pixels, mean over items)
    loss_recomputed: float  # <c, phi> with the recomputed maps
    relative_loss: float  # |loss_warped - loss_recomputed| / |loss_recomputed|


def warp_error(
    labels: torch.Tensor,
    maps: torch.Tensor,
    spacing: torch.Tensor,
    warp: BatchWarp,
    generator: torch.Generator | None = None,
    probs: torch.Tensor | None = None,
) -> WarpError:
    r"""The error of warping cached distance maps instead of recomputing them.

    Draws one warp per item, then compares the cached ``maps`` warped like an image
    (bilinear) with :func:`~bl_tutorial.distance_torch.batch_distance_maps` of the warped
    ``labels`` (nearest), over the pixels whose source lies inside the image (between its
    first and last pixel centres, where bilinear interpolation needs no padding).

    Parameters
    ----------
    labels : Tensor of int, shape (B, H, W) or (B, D, H, W)
    maps : Tensor, shape (B, K, *spatial)
        The cached maps of ``labels`` (in ``warp.convention``).
    spacing : Tensor, shape (B, n_spatial)
        Pixel size of each item in the maps' unit.
    warp : BatchWarp
    generator : torch.Generator, optional
    probs : Tensor, shape (B, K, *spatial), optional
        The :math:`c` of the boundary loss :math:`\langle c, \phi \rangle`, on the warped
        grid; default: the one-hot warped labels.

    Returns
    -------
    WarpError
        ``mean`` and ``largest`` are NaN if no pixel's source lies inside the image.

    Examples
    --------
    >>> labels = torch.zeros((1, 32, 32), dtype=torch.long); labels[:, 8:20, 10:24] = 1
    >>> spacing = torch.ones(1, 2)
    >>> maps = batch_distance_maps(labels, 2)
    >>> warp_error(labels, maps, spacing, BatchWarp(rotation=0, scale=0, translation=0)).largest < 1e-4
    True
    """
    if not isinstance(warp, BatchWarp):
        raise TypeError(f"warp must be a BatchWarp, got {type(warp).__name__}")
    for name, value in (("labels", labels), ("maps", maps)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if maps.ndim not in (4, 5) or maps.shape[:1] + maps.shape[2:] != labels.shape:
        raise ValueError(
            f"maps must have shape (B, K, *spatial) matching labels (B, *spatial), "
            f"got maps of shape {tuple(maps.shape)} and labels of shape {tuple(labels.shape)}"
        )
    spacing = _check_spacing_table(spacing, maps.ndim - 2, "spacing")
    grid = warp.sampling_grid(spacing[:, -2:], tuple(maps.shape[-2:]), generator)
    warped_labels = warp_tensor(labels, grid, "nearest")
    warped = warp_tensor(maps.float(), grid, "bilinear")
    recomputed = batch_distance_maps(warped_labels, maps.shape[1], spacing, warp.convention)
    size = torch.tensor(maps.shape[-2:][::-1], device=grid.device)  # (cols, rows), the grid's order
    source = ((grid + 1) * size - 1) / 2  # source pixel index (x, y)
    inside = ((source >= 0) & (source <= size - 1)).all(-1)  # (B, H, W)
    inside = inside[:, None, None] if maps.ndim == 5 else inside[:, None]  # broadcast over classes (and slices)
    inside = inside.expand_as(recomputed)
    difference = (warped - recomputed).abs()[inside]
    c = probs if probs is not None else F.one_hot(warped_labels, maps.shape[1]).movedim(-1, 1).float()
    loss_warped = float(boundary_loss(c, warped * inside, reduction="sum"))
    loss_recomputed = float(boundary_loss(c, recomputed * inside, reduction="sum"))
    relative = abs(loss_warped - loss_recomputed) / max(abs(loss_recomputed), 1e-12)
    if difference.numel() == 0:
        return WarpError(math.nan, math.nan, loss_warped, loss_recomputed, relative)
    return WarpError(float(difference.mean()), float(difference.max()), loss_warped, loss_recomputed, relative)


BATCH_WARPS: dict[str, BatchWarp] = {
    "affine": BatchWarp(rotation=15.0, scale=0.1, translation=0.05),
    "elastic": BatchWarp(rotation=15.0, scale=0.1, translation=0.05, elastic=4.0, smoothness=16.0),
    "elastic-warped-maps": BatchWarp(
        rotation=15.0, scale=0.1, translation=0.05, elastic=4.0, smoothness=16.0, maps="warp"
    ),  # fmt: skip
}
"""The warps a profile can ask for by name (``Training(batch_warp="elastic")``)."""
