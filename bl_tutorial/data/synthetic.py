"""Deterministic stand-ins for DRIVE and ACDC, written in the official layouts and formats.

The real data sets may not be redistributed (DRIVE) or are under a non-commercial licence
(ACDC), and CI has no internet. These generators write trees that the readers of
:mod:`bl_tutorial.data.drive` and :mod:`bl_tutorial.data.acdc` read exactly like the real
ones: TIFF images and GIF masks for DRIVE, NIfTI volumes with a real affine and
``Info.cfg`` files for ACDC. They keep what matters for the lesson:

DRIVE-like
    584 x 565 RGB fundus-like images; a circular field of view about 540 px across;
    branching vessel trees leaving an optic disc, widths tapering from about 8 px to 1 px,
    covering 10-14 % of the field of view; a darker macula; illumination fall-off;
    choroidal texture, haemorrhage- and exudate-like spots, noise and a light blur; vessels
    darker mostly in the green channel, thin vessels faint. Thresholding the green channel
    does not segment them: shape and context are needed.

ACDC-like
    short-axis cine volumes, 6-10 slices, about 1.5 x 1.5 x 10 mm, in NIfTI with an oblique
    affine; ED and ES frames; LV blood pool, myocardial ring, RV crescent with small class
    fractions; apical slices without RV; a smaller LV and a thicker wall at ES;
    surrounding bright fat, dark lungs and other tissue; a bias field and Rician noise.

Everything is seeded: the same ``seed`` gives byte-identical files. Bump
``GENERATOR_VERSION`` whenever the output changes, so that cached stand-ins regenerate.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

GENERATOR_VERSION = 1
"""Version of the stand-in generators; part of the cache folder name."""

DRIVE_SHAPE = (584, 565)
FOV_RADIUS = 270.0

__all__ = [
    "GENERATOR_VERSION",
    "DriveStandinConfig",
    "AcdcStandinConfig",
    "drive_like_sample",
    "acdc_like_volume",
    "write_drive_standin",
    "write_acdc_standin",
]


# =========================================================================== DRIVE
@dataclass(frozen=True)
class DriveStandinConfig:
    """How many images the DRIVE-like tree holds (the real set: 20 + 20)."""

    n_training: int = 20
    n_test: int = 20
    seed: int = 0


def _grow_vessel_tree(rng: np.random.Generator, disc: np.ndarray, macula: np.ndarray, fov_centre: np.ndarray):
    """Centreline points and widths of a branching tree that leaves the optic disc.

    Four trunks (superior and inferior arcades curving around the macula, and two
    nasal trunks) branch repeatedly; each child is thinner than its parent, widths
    taper along the way, and a branch stops when it is thinner than one pixel or leaves
    the field of view.
    """
    points: list[tuple[float, float, float]] = []
    towards_macula = np.arctan2(*(macula - disc))
    side = np.sign(macula[1] - disc[1]) or 1.0
    stack = []
    for offset, bend, width in [(-0.9, 1, 8.0), (0.9, -1, 7.6), (-2.2, 0, 6.0), (2.2, 0, 5.8)]:
        angle = towards_macula + offset * side + rng.normal(0, 0.08)
        stack.append((disc + rng.normal(0, 3, 2), angle, width * rng.uniform(0.92, 1.05), bend * side * 0.006))
    step = 1.6
    while stack and len(points) < 60000:
        position, angle, width, curvature = stack.pop()
        position = np.array(position, float)
        since_branch = rng.uniform(10, 40)
        while width >= 0.9:
            angle += curvature + rng.normal(0, 0.045)
            position = position + step * np.array([np.sin(angle), np.cos(angle)])
            if np.hypot(*(position - fov_centre)) > FOV_RADIUS + 6:
                break
            # stay out of the centre of the macula (the fovea is avascular)
            if np.hypot(*(position - macula)) < 14 + 3 * width:
                angle += 0.25 * np.sign(rng.normal())
            points.append((position[0], position[1], width))
            width *= 0.9975
            since_branch -= step
            if since_branch <= 0 and width > 1.6:
                child = width * rng.uniform(0.5, 0.8)
                turn = rng.choice([-1, 1]) * rng.uniform(0.45, 1.2)
                stack.append((position.copy(), angle + turn, child, rng.normal(0, 0.006)))
                width *= rng.uniform(0.82, 0.93)
                since_branch = rng.uniform(25, 70) * (width / 4) ** 0.3
    return np.array(points)


def _render_tubes(points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise centreline points with radii: (excess distance, soft darkening profile).

    Points are grouped by radius (quarter-pixel bins); for each group one distance
    transform gives every pixel's distance to the nearest centreline point. The excess
    is the smallest (distance - radius) over all groups: a pixel is inside a tube of
    radius r + t when its excess is at most t.
    """
    excess = np.full(shape, np.inf, np.float32)
    profile = np.zeros(shape, np.float32)
    rows = np.clip(np.round(points[:, 0]).astype(int), 0, shape[0] - 1)
    cols = np.clip(np.round(points[:, 1]).astype(int), 0, shape[1] - 1)
    radius_bins = np.round(points[:, 2] / 2 * 4) / 4
    for radius in np.unique(radius_bins):
        centre = np.ones(shape, bool)
        chosen = radius_bins == radius
        centre[rows[chosen], cols[chosen]] = False
        distance = ndimage.distance_transform_edt(centre)
        np.minimum(excess, distance - max(radius, 0.5), out=excess)
        contrast = np.clip(0.3 + 0.09 * radius * 2, 0.3, 0.85)
        soft = contrast * np.clip(1 - (distance / (radius + 0.6)) ** 2, 0, 1) ** 0.7
        np.maximum(profile, soft.astype(np.float32), out=profile)
    return excess, profile


def drive_like_sample(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One DRIVE-like fundus image: (RGB uint8 584 x 565 x 3, vessels bool, field of view bool).

    Examples
    --------
    >>> image, vessels, fov = drive_like_sample(0)
    >>> image.shape, image.dtype, vessels.shape, fov.shape
    ((584, 565, 3), dtype('uint8'), (584, 565), (584, 565))
    """
    rng = np.random.default_rng([GENERATOR_VERSION, 7, seed])
    shape = DRIVE_SHAPE
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    fov_centre = np.array([shape[0] / 2 + rng.normal(0, 2), shape[1] / 2 + rng.normal(0, 2)])
    radial = np.hypot(yy - fov_centre[0], xx - fov_centre[1]) / FOV_RADIUS
    fov = radial <= 1.0

    right_eye = rng.random() < 0.5
    disc = fov_centre + np.array([rng.normal(-8, 12), (1 if right_eye else -1) * rng.uniform(150, 185)])
    macula = fov_centre + np.array([rng.normal(8, 10), (-1 if right_eye else 1) * rng.uniform(15, 40)])

    points = _grow_vessel_tree(rng, disc, macula, fov_centre)
    excess, profile = _render_tubes(points, shape)
    # annotate tubes slightly wider or narrower so vessels cover 10.5-13.5 % of the FOV
    fraction = rng.uniform(0.105, 0.135)
    excess += 0.15 * ndimage.gaussian_filter(rng.standard_normal(shape), 1.0).astype(np.float32)  # break ties
    widening = float(np.clip(np.quantile(excess[fov], fraction), -0.25, 1.0))
    vessels = (excess <= widening) & fov

    # background: orange-red fundus, illumination falling off towards the rim
    falloff = np.clip(1.0 - 0.55 * radial**2.2, 0.2, 1.0)
    tone = rng.uniform(0.85, 1.1)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 9) * 9
    texture += ndimage.gaussian_filter(rng.standard_normal(shape), 1.6) * 1.2
    red = (175 + 45 * tone) * falloff + texture * 1.6
    green = (72 + 22 * tone) * falloff + texture
    blue = (30 + 12 * tone) * falloff + texture * 0.5

    disc_r = np.hypot((yy - disc[0]) / 1.1, xx - disc[1]) / rng.uniform(36, 44)
    disc_glow = np.clip(1.2 - disc_r, 0, 1) ** 0.8
    red += 45 * disc_glow
    green += 95 * disc_glow
    blue += 70 * disc_glow
    macula_r = np.hypot(yy - macula[0], xx - macula[1]) / rng.uniform(55, 75)
    macula_shade = np.exp(-(macula_r**2))
    red -= 25 * macula_shade
    green -= 22 * macula_shade
    blue -= 8 * macula_shade

    # lesions: dark haemorrhage-like blobs and bright exudate-like flecks, both vessel-sized
    for _ in range(rng.integers(0, 7)):
        cy, cx = fov_centre + rng.uniform(-1, 1, 2) * FOV_RADIUS * 0.7
        blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 6) ** 2)))
        if rng.random() < 0.5:
            green -= 30 * blob
            red -= 40 * blob
        else:
            green += 45 * blob
            red += 25 * blob

    # vessels: darker, most of all in green; a central light reflex on the widest
    reflex = profile > 0.75
    green *= 1 - 0.62 * profile + 0.05 * reflex
    red *= 1 - 0.16 * profile
    blue *= 1 - 0.3 * profile

    image = np.stack([red, green, blue], axis=-1)
    image = ndimage.gaussian_filter(image, sigma=(0.8, 0.8, 0))
    image += rng.normal(0, 3.5, image.shape)
    image *= fov[..., None]
    image += np.abs(rng.normal(0, 1.2, image.shape)) * ~fov[..., None]
    return np.clip(np.round(image), 0, 255).astype(np.uint8), vessels, fov


def write_drive_standin(root: Path | str, config: DriveStandinConfig = DriveStandinConfig()) -> Path:
    """Write a DRIVE-like tree in the official layout under ``root``.

    ``training/images/21_training.tif`` ... ``40_training.tif``, ``training/1st_manual/
    21_manual1.gif``, ``training/mask/21_training_mask.gif``, ``test/images/01_test.tif``
    ..., ``test/mask/01_test_mask.gif`` (no test annotations, like the current official
    release). Writes into ``root`` directly; :func:`bl_tutorial.data.ensure_dataset`
    makes it atomic.
    """
    from PIL import Image

    root = Path(root)
    splits = [("training", range(21, 21 + config.n_training)), ("test", range(1, 1 + config.n_test))]
    jobs = [(split, number) for split, numbers in splits for number in numbers]
    for split, _ in splits:
        for folder in ("images", "mask") + (("1st_manual",) if split == "training" else ()):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
    seeds = [config.seed * 1000 + number for _, number in jobs]
    for (split, number), (image, vessels, fov) in zip(jobs, _map_parallel(drive_like_sample, seeds)):
        stem = f"{number:02d}_{split}"
        Image.fromarray(image, "RGB").save(root / split / "images" / f"{stem}.tif", compression="tiff_lzw")
        Image.fromarray(fov.astype(np.uint8) * 255, "L").save(root / split / "mask" / f"{stem}_mask.gif")
        if split == "training":
            manual = Image.fromarray(vessels.astype(np.uint8) * 255, "L")
            manual.save(root / split / "1st_manual" / f"{number:02d}_manual1.gif")
    return root


def _map_parallel(function, arguments: list):
    """``map`` over up to two processes (the generators are seeded per item, so order-free).

    If the caller stops early (an error, Ctrl-C), the items not yet started are
    cancelled instead of being computed for nothing. If this process is killed, the
    workers end too (:func:`_exit_with_parent`).
    """
    workers = min(2, os.cpu_count() or 1, len(arguments))
    if workers < 2:
        yield from map(function, arguments)
        return
    pool = ProcessPoolExecutor(workers, initializer=_exit_with_parent)
    try:
        yield from pool.map(function, arguments)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent() -> None:
    """Worker initialiser: end this worker as soon as the process that started it is gone.

    A worker that waits for work never learns that its parent was killed (``kill -9``,
    or SIGTERM, which skips Python's clean-up): it would sleep forever. A background
    thread watches the parent's process id, which changes when the parent dies (the
    orphan is adopted by another process), and then ends the worker. This works on
    Linux and macOS alike.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# =========================================================================== ACDC
@dataclass(frozen=True)
class AcdcStandinConfig:
    """How many patients the ACDC-like tree holds (the real set: 100 + 50)."""

    n_training: int = 100
    n_test: int = 50
    seed: int = 0


GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / (field.std() + 1e-8)


def acdc_like_volume(seed: int, phase: str = "ED") -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """One ACDC-like short-axis volume: (image float32 (z, y, x), labels uint8, spacing (z, y, x) mm).

    The ED and ES frames of one patient share the anatomy (same ``seed``); at ES the
    LV is smaller, the wall thicker and the RV smaller.

    Examples
    --------
    >>> image, labels, spacing = acdc_like_volume(0)
    >>> image.ndim, sorted(set(labels.ravel().tolist())) == [0, 1, 2, 3], len(spacing)
    (3, True, 3)
    """
    if phase not in ("ED", "ES"):
        raise ValueError(f"phase must be 'ED' or 'ES', got {phase!r}")
    rng = np.random.default_rng([GENERATOR_VERSION, 11, seed])
    n_slices = int(rng.integers(6, 11))
    rows, cols = int(rng.choice([216, 232, 256])), int(rng.choice([208, 224, 256]))
    pixel = float(rng.uniform(1.37, 1.68))
    spacing = (float(rng.choice([5.0, 6.5, 10.0], p=[0.1, 0.1, 0.8])), pixel, pixel)
    group = GROUPS[seed % len(GROUPS)]

    # anatomy in millimetres, shared by both phases
    centre = np.array([rows / 2 + rng.normal(0, 6), cols / 2 + rng.normal(0, 6)]) * pixel
    lv_radius_ed = rng.uniform(22, 30) * (1.25 if group == "DCM" else 1.0)
    wall_ed = rng.uniform(7, 10) * (1.6 if group == "HCM" else 1.0)
    rv_angle = rng.uniform(np.pi * 0.8, np.pi * 1.2)  # RV on the patient's right (image left)
    rv_size = rng.uniform(1.0, 1.3) * (1.35 if group == "RV" else 1.0)
    squash = rng.uniform(0.85, 1.0)
    es = phase == "ES"
    lv_radius = lv_radius_ed * (0.68 if group in ("NOR", "HCM") else 0.85) if es else lv_radius_ed
    wall = wall_ed * (1.35 if es else 1.0)
    n_apical_without_rv = int(rng.integers(1, 3))

    yy, xx = np.mgrid[:rows, :cols].astype(np.float32) * pixel
    labels = np.zeros((n_slices, rows, cols), np.uint8)
    image = np.zeros((n_slices, rows, cols), np.float32)
    tissue = _smooth_field(rng, (rows, cols), 6)
    fat = _smooth_field(rng, (rows, cols), 4) > 1.1
    lungs = (_smooth_field(rng, (rows, cols), 14) > 0.7) & (np.hypot(yy - centre[0], xx - centre[1]) > 75)
    body = np.hypot((yy - rows * pixel / 2) / 0.95, (xx - cols * pixel / 2) / 1.1) < min(rows, cols) * pixel * 0.47
    background = np.where(body, np.where(lungs, 0.05, np.where(fat, 0.85, 0.32 + 0.06 * tissue)), 0.0)
    shape = {"centre": centre, "squash": squash, "lv_radius": lv_radius, "wall": wall, "rv_angle": rv_angle,
             "rv_size": rv_size * (0.75 if es else 1.0), "slices_with_rv": n_slices - n_apical_without_rv}  # fmt: skip
    for z in range(n_slices):
        labels[z], r, r_lv = _heart_slice(yy, xx, z / max(1, n_slices - 1), z < shape["slices_with_rv"], shape)
        # intensities: bright blood, dark myocardium, mid-grey tissue, bright fat, dark lungs
        blood = 0.78 + 0.05 * rng.standard_normal()
        base = np.where(labels[z] == 1, blood * 0.92, background)
        base = np.where(labels[z] == 3, blood, base)
        base = np.where(labels[z] == 2, 0.2, base)
        trabeculae = (np.hypot(*np.mgrid[:rows, :cols]) % 9 < 1.5) & (r > r_lv * 0.7) & (labels[z] == 3)
        base = np.where(trabeculae, base * 0.75, base)
        image[z] = ndimage.gaussian_filter(base, 1.1)

    bias = np.exp(0.25 * _smooth_field(rng, (rows, cols), 40))
    sigma = 0.045
    real = image * bias + rng.normal(0, sigma, image.shape)
    imaginary = rng.normal(0, sigma, image.shape)
    image = np.sqrt(real**2 + imaginary**2) * rng.uniform(250, 450)  # Rician magnitude, scanner units
    return image.astype(np.float32), labels, spacing


def _heart_slice(yy: np.ndarray, xx: np.ndarray, depth: float, with_rv: bool, shape: dict):
    """Labels of one short-axis slice at ``depth`` (0 = base, 1 = apex), its radius map and LV radius."""
    taper = np.sqrt(max(0.05, 1 - 0.8 * depth**1.6))
    cy, cx = shape["centre"] + np.array([depth * 6, -depth * 4])
    r = np.hypot((yy - cy) / shape["squash"], xx - cx)
    r_lv, wall = shape["lv_radius"] * taper, shape["wall"]
    lv = r < r_lv
    myo = (r >= r_lv) & (r < r_lv + wall * (0.9 + 0.2 * depth))
    if depth > 0.92:  # the very apex: myocardium only
        myo |= lv
        lv[:] = False
    labels = np.zeros(yy.shape, np.uint8)
    if with_rv:
        angle = shape["rv_angle"]
        rv_centre = np.array([cy, cx]) + (r_lv + wall) * 1.05 * np.array([np.sin(angle), np.cos(angle)])
        r_rv = np.hypot((yy - rv_centre[0]) / 1.4, (xx - rv_centre[1]) / 0.9)
        rv_radius = r_lv * shape["rv_size"] * (1 - 0.4 * depth)
        labels[(r_rv < rv_radius) & (r > r_lv + wall + 2.5)] = 1
    labels[myo] = 2
    labels[lv] = 3
    return labels, r, r_lv


def _nifti_affine(spacing_zyx: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """An oblique short-axis orientation: a rotation times the voxel sizes, plus an offset (x, y, z)."""
    angles = rng.uniform(-0.6, 0.6, 3)
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ ry @ rx @ np.diag(spacing_zyx[::-1])
    affine[:3, 3] = rng.uniform(-150, 150, 3)
    return affine


def _save_nifti(array_zyx: np.ndarray, affine: np.ndarray, spacing_zyx, path: Path, dtype) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(np.asarray(array_zyx.transpose(2, 1, 0), dtype=dtype), affine)
    image.header.set_zooms(tuple(float(s) for s in spacing_zyx[::-1]))
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))


def write_acdc_standin(root: Path | str, config: AcdcStandinConfig = AcdcStandinConfig()) -> Path:
    """Write an ACDC-like tree in the official layout under ``root``.

    ``training/patient001/Info.cfg``, ``patient001_frame01.nii.gz`` and
    ``patient001_frame01_gt.nii.gz`` for the ED and ES frames, and likewise under
    ``testing/patient101/``... NIfTI arrays are stored (x, y, z) with the voxel sizes in
    the header, as in the real set. The 4D cine file of the real set is not written.
    """
    root = Path(root)
    splits = [("training", range(1, 1 + config.n_training)), ("testing", range(101, 101 + config.n_test))]
    jobs = [(root / split, number, config.seed * 1000 + number) for split, numbers in splits for number in numbers]
    for _ in _map_parallel(_write_acdc_patient, jobs):
        pass
    return root


def _write_acdc_patient(job: tuple[Path, int, int]) -> None:
    """Write one patient folder: Info.cfg and the ED and ES frames with their labels."""
    split_folder, number, patient_seed = job
    rng = np.random.default_rng([GENERATOR_VERSION, 13, patient_seed])
    folder = split_folder / f"patient{number:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    n_frames = int(rng.integers(20, 31))
    es_frame = int(rng.integers(8, 15))
    group = GROUPS[patient_seed % len(GROUPS)]
    info = (
        f"ED: 1\nES: {es_frame}\nGroup: {group}\nHeight: {rng.uniform(150, 195):.1f}\n"
        f"NbFrame: {n_frames}\nWeight: {rng.uniform(50, 110):.1f}\n"
    )
    (folder / "Info.cfg").write_text(info)
    affine = None
    for phase, frame in (("ED", 1), ("ES", es_frame)):
        image, labels, spacing = acdc_like_volume(patient_seed, phase)
        if affine is None:
            affine = _nifti_affine(spacing, rng)
        stem = folder / f"patient{number:03d}_frame{frame:02d}"
        _save_nifti(np.round(image), affine, spacing, Path(f"{stem}.nii.gz"), np.int16)
        _save_nifti(labels, affine, spacing, Path(f"{stem}_gt.nii.gz"), np.uint8)
