"""The report's experiments, done properly: named profiles, a grid of losses x seeds, results files.

``python -m bl_tutorial.experiments drive --profile fast --out runs/drive-fast`` trains
the four DRIVE losses of the report (GDL + alpha BL, GDL, CE, CE + alpha BL) and writes
``results.json`` and PNG figures; ``acdc`` trains ENet with the boundary loss on all four
classes and a regional baseline. ``--help`` lists every option.

Evaluation is what the report could not do on a laptop:

* DRIVE: Dice inside the field of view, on every validation image, thresholded at 0.5,
  at native resolution (584 x 565, probabilities resized bilinearly), at the best epoch
  chosen on validation; mean and standard deviation over seeds; each "+ BL" loss paired
  with its regional baseline (same seeds, same images).
* ACDC: Dice and HD95 (mm) per class (RV, MYO, LV) on the validation patients, per 2D
  slice (averaged over the slices where the class is present in the truth) and per 3D
  volume, with the spacing of the resized volumes.

Profiles (:data:`PROFILES`): ``fast`` runs on two CPU cores in minutes on small images
and narrow networks; ``full`` uses the report's settings and wants a GPU. The profile is
an argument, else ``$BL_TUTORIAL_PROFILE``, else ``full`` on a GPU and ``fast`` on a CPU.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bl_tutorial import __version__
from bl_tutorial.data import (
    CLASS_NAMES,
    AcdcDataset,
    DriveDataset,
    ensure_dataset,
    read_acdc,
    read_drive,
    split_items,
)
from bl_tutorial.device import device_banner, get_device, seed_everything
from bl_tutorial.metrics import dice_score, hd95, per_class
from bl_tutorial.models import ENet, UNet, count_parameters
from bl_tutorial.training import LossSpec, TrainConfig, predict, train

PROFILE_ENV = "BL_TUTORIAL_PROFILE"
REPORT_TABLE1 = {"gdl+bl": 0.788, "gdl": 0.793, "ce+bl": 0.763, "ce": 0.798}
"""DSC in the source report's Table 1 (DRIVE, one validation image, last epoch, whole crop, 256 px)."""
BAUMGARTNER_2017 = {"RV": 0.893, "MYO": 0.899, "LV": 0.950}
"""3D Dice of a full-resolution 2D U-Net on real ACDC (Baumgartner et al. 2017), for orientation."""
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
"""Where full-profile results are committed (``results/<experiment>-full/results.json``)."""
EXPERIMENTS = ("drive", "acdc")
RESULTS_FILE = "results.json"

__all__ = [
    "Profile",
    "PROFILES",
    "resolve_profile",
    "run_experiment",
    "load_results",
    "full_results",
    "summarize",
    "comparison_sentence",
    "REPORT_TABLE1",
    "BAUMGARTNER_2017",
    "main",
]


@dataclass(frozen=True)
class Profile:
    """Everything that sets the size of an experiment."""

    image_size: int
    model: str  # "unet" or "enet"
    width: int  # UNet base width (ignored by ENet)
    epochs: int
    batch_size: int
    lr: float
    seeds: tuple[int, ...]
    losses: tuple[str, ...]
    n_val: int  # validation images (DRIVE) or patients (ACDC), split with split_seed
    n_train: int | None = None  # None: all the others
    augment: str = "flip"
    crop_mm: float | None = None  # ACDC: central crop before resizing
    alpha: float = 0.05
    split_seed: int = 0
    val_hd95: bool = False


PROFILES: dict[str, dict[str, Profile]] = {
    "drive": {
        "fast": Profile(128, "unet", 8, 60, 8, 2e-3, (0,), ("gdl+bl", "gdl", "ce", "ce+bl"), n_val=4, n_train=16),
        "full": Profile(256, "unet", 64, 150, 8, 1e-3, (0, 1, 2), ("gdl+bl", "gdl", "ce", "ce+bl"), n_val=4),
    },
    "acdc": {
        "fast": Profile(
            64, "enet", 0, 16, 8, 5e-3, (0,), ("bl", "gdl"), n_val=5, n_train=12, augment="none", crop_mm=128
        ),
        "full": Profile(
            256, "enet", 0, 100, 8, 5e-4, (0, 1, 2), ("bl", "gdl", "gdl+bl"), n_val=25, augment="none", val_hd95=True
        ),
    },
}
"""``PROFILES[experiment][profile]``. DRIVE full: the report (UNet, 256 px, 150 epochs,
batch 8, alpha 0.05). ACDC full: the official code (ENet, 256 px, Adam 5e-4, betas
(0.9, 0.99), batch 8, 100 epochs, 25 validation patients)."""


def resolve_profile(name: str | None = None) -> str:
    """The profile to use: ``name``, else ``$BL_TUTORIAL_PROFILE``, else by device (GPU: full)."""
    chosen = name or os.environ.get(PROFILE_ENV) or ("full" if get_device().type == "cuda" else "fast")
    if chosen not in ("fast", "full"):
        raise ValueError(f"profile must be one of ['fast', 'full'], got {chosen!r}")
    return chosen


def _build_model(profile: Profile, in_channels: int, num_classes: int) -> torch.nn.Module:
    if profile.model == "unet":
        return UNet(in_channels, num_classes, base=profile.width)
    return ENet(in_channels, num_classes)


# --------------------------------------------------------------------------- data
def _drive_data(profile: Profile, data_root):
    source = ensure_dataset("drive", data_root)
    samples = read_drive(source, "training")
    if any(s.vessels is None for s in samples):
        raise ValueError(f"{source.root}: every DRIVE training image needs its 1st_manual annotation")
    train_ids, val_ids = split_items([s.id for s in samples], profile.n_val, profile.split_seed)
    if profile.n_train is not None:
        train_ids = train_ids[: profile.n_train]
    by_id = {s.id: s for s in samples}
    test = read_drive(source, "test")
    return source, [by_id[i] for i in train_ids], [by_id[i] for i in val_ids], test


def _acdc_data(profile: Profile, data_root):
    source = ensure_dataset("acdc", data_root)
    patients = read_acdc(source, "training")
    train_ids, val_ids = split_items([p.id for p in patients], profile.n_val, profile.split_seed)
    if profile.n_train is not None:
        train_ids = train_ids[: profile.n_train]
    by_id = {p.id: p for p in patients}
    return source, [by_id[i] for i in train_ids], [by_id[i] for i in val_ids]


# --------------------------------------------------------------------------- evaluation
def _native_vessel_probability(sample, probs: torch.Tensor) -> np.ndarray:
    """The vessel probability of one image, resized bilinearly from the training size to the native size."""
    native = torch.nn.functional.interpolate(probs[None, 1:2], size=sample.image.shape[:2], mode="bilinear")
    return native[0, 0].numpy()


def evaluate_drive(model, samples, dataset: DriveDataset) -> dict:
    """Dice inside the field of view at native resolution, threshold 0.5, per validation image.

    Also returns the Dice at the training size (inside the resized field of view), and
    the native vessel probability of the first image for the figures (key ``"_first_probability"``,
    removed before the results are written).
    """
    probs = predict(model, torch.from_numpy(dataset.images))
    native = [_native_vessel_probability(sample, p) for sample, p in zip(samples, probs)]
    per_image = [dice_score(prob >= 0.5, s.vessels, mask=s.fov) for s, prob in zip(samples, native)]
    low_res = probs.argmax(1).numpy()
    at_training_size = [
        dice_score(p == 1, t == 1, mask=roi) for p, t, roi in zip(low_res, dataset.labels, dataset.rois)
    ]
    return {
        "dice": float(np.mean(per_image)),
        "dice_per_image": per_image,
        "image_ids": [s.id for s in samples],
        "dice_at_training_size": float(np.mean(at_training_size)),
        "_first_probability": native[0],
    }


def _trivial_drive(samples) -> dict:
    """Dice of predicting 'vessel' everywhere inside the field of view (the trivial baseline)."""
    scores = [dice_score(s.fov, s.vessels, mask=s.fov) for s in samples]
    return {"all_vessel_dice": float(np.mean(scores)), "all_background_dice": 0.0}


def evaluate_acdc(model, dataset: AcdcDataset) -> dict:
    """Dice and HD95 (mm) per class (RV, MYO, LV), per 2D slice and per 3D volume."""
    pred = predict(model, torch.from_numpy(dataset.images)).argmax(1).numpy().astype(np.uint8)
    classes = [1, 2, 3]
    slice_dice, slice_hd = {k: [] for k in classes}, {k: [] for k in classes}
    for index in range(len(pred)):
        truth = dataset.labels[index]
        spacing = dataset.spacing_of(index)
        for k in classes:
            if (truth == k).any():
                slice_dice[k].append(dice_score(pred[index] == k, truth == k))
                slice_hd[k].append(hd95(pred[index] == k, truth == k, spacing))
    volume_dice, volume_hd = [], []
    for indices in dataset.volumes.values():
        spacing = dataset.slices[indices[0]].spacing
        p, t = pred[indices], dataset.labels[indices]
        volume_dice.append(per_class(dice_score, p, t, 4, classes=classes))
        volume_hd.append(per_class(hd95, p, t, 4, classes=classes, spacing=spacing))
    names = [CLASS_NAMES[k] for k in classes]
    return {
        "classes": names,
        "dice_2d": [float(np.mean(slice_dice[k])) for k in classes],
        "hd95_2d": [float(np.mean(slice_hd[k])) for k in classes],
        "dice_3d": np.mean(volume_dice, axis=0).tolist(),
        "dice_3d_std": np.std(volume_dice, axis=0).tolist(),
        "hd95_3d": np.mean(volume_hd, axis=0).tolist(),
        "hd95_3d_std": np.std(volume_hd, axis=0).tolist(),
        "dice": float(np.mean(volume_dice)),
        "n_volumes": len(volume_dice),
        "n_slices": len(pred),
    }


# --------------------------------------------------------------------------- figures
def _save_drive_figures(model, loss: str, seed: int, sample, prob, test_samples, size, out: Path):
    """Write a validation error map and a test prediction as PNG (Figure objects: no pyplot state)."""
    from matplotlib.figure import Figure

    from bl_tutorial.data.transforms import normalize_intensity, resize_image
    from bl_tutorial.viz import error_map

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    errors = error_map(prob >= 0.5, sample.vessels, sample.fov)  # FP red, FN blue
    fig = Figure(figsize=(12, 4.2))
    axes = fig.subplots(1, 3)
    for ax, img, title in zip(
        axes, [sample.image, sample.vessels, errors], [f"validation image {sample.id}", "truth", "FP red, FN blue"]
    ):
        ax.imshow(img, cmap="gray")
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(f"{loss}, seed {seed}")
    fig.savefig(figures / f"val_{loss}_seed{seed}.png", dpi=80, bbox_inches="tight")
    if test_samples:
        test = test_samples[0]
        image = normalize_intensity(test.image, mask=test.fov, channel_axis=-1).transpose(2, 0, 1)
        probs = predict(model, torch.from_numpy(resize_image(image, (size, size)))[None])
        vessel = _native_vessel_probability(test, probs[0]) * test.fov
        fig = Figure(figsize=(8, 4.2))
        axes = fig.subplots(1, 2)
        axes[0].imshow(test.image)
        axes[0].set_title(f"test image {test.id}")
        axes[1].imshow(vessel >= 0.5, cmap="gray")
        axes[1].set_title(f"prediction ({loss})")
        for ax in axes:
            ax.axis("off")
        fig.savefig(figures / f"test_{loss}_seed{seed}.png", dpi=80, bbox_inches="tight")
        # the probabilities themselves, so that notebooks can lay out their own figures
        np.savez_compressed(
            figures / f"probabilities_{loss}_seed{seed}.npz",
            val_probability=prob.astype(np.float16),
            val_id=sample.id,
            test_probability=vessel.astype(np.float16),
            test_id=test.id,
        )


def _save_acdc_figure(model, loss: str, seed: int, val_set: AcdcDataset, out: Path, count: int = 6):
    """Write input / truth / prediction / difference for ``count`` random validation slices as PNG."""
    from matplotlib.figure import Figure

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    chosen = np.random.default_rng(seed).choice(len(val_set), size=min(count, len(val_set)), replace=False)
    pred = predict(model, torch.from_numpy(val_set.images[chosen])).argmax(1).numpy()
    fig = Figure(figsize=(8, 2 * len(chosen)))
    axes = fig.subplots(len(chosen), 4, squeeze=False)
    for row, (index, p) in enumerate(zip(chosen, pred)):
        truth = val_set.labels[index]
        panels = [val_set.images[index, 0], truth, p, (p != truth)]
        for col, (panel, title) in enumerate(zip(panels, ["input", "truth", "prediction", "difference"])):
            axes[row, col].imshow(
                panel,
                cmap="gray" if col in (0, 3) else "viridis",
                vmin=0 if col else None,
                vmax=3 if col in (1, 2) else None,
            )
            axes[row, col].axis("off")
            if row == 0:
                axes[row, col].set_title(title)
    fig.suptitle(f"ACDC validation slices, {loss}, seed {seed}")
    fig.savefig(figures / f"slices_{loss}_seed{seed}.png", dpi=80, bbox_inches="tight")


# --------------------------------------------------------------------------- summaries
def summarize(results: dict) -> dict:
    """Mean and spread over seeds per loss, and paired differences of '+bl' runs vs their baseline."""
    by_loss: dict[str, dict[int, dict]] = {}
    for run in results["runs"]:
        by_loss.setdefault(run["loss"], {})[run["seed"]] = run
    summary = {}
    for loss, runs in by_loss.items():
        scores = [r["metrics"]["dice"] for r in runs.values()]
        summary[loss] = {
            "dice_mean": float(np.mean(scores)),
            "dice_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
            "n_seeds": len(scores),
            "best_epochs": [r["best_epoch"] for r in runs.values()],
        }
    comparisons = []
    for loss, runs in by_loss.items():
        spec = LossSpec.parse(loss)
        if not (spec.boundary and spec.regional) or spec.regional not in by_loss:
            continue
        baseline = by_loss[spec.regional]
        seeds = sorted(set(runs) & set(baseline))
        diffs = [runs[s]["metrics"]["dice"] - baseline[s]["metrics"]["dice"] for s in seeds]
        spread = summary[spec.regional]["dice_std"]
        mean = float(np.mean(diffs))
        comparisons.append(
            {
                "loss": loss,
                "baseline": spec.regional,
                "seeds": seeds,
                "dice_differences": diffs,
                "mean_difference": mean,
                "baseline_seed_std": spread,
                "exceeds_seed_spread": None if spread is None else bool(abs(mean) > spread),
            }
        )
    return {"summary": summary, "comparisons": comparisons}


# --------------------------------------------------------------------------- running
def _prepare_out(out: Path | None, signature: dict, overwrite: bool) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    existing = out / RESULTS_FILE
    if existing.is_file() and not overwrite:
        try:
            previous = json.loads(existing.read_text()).get("signature")
        except json.JSONDecodeError:
            previous = None
        if previous != signature:
            raise FileExistsError(
                f"{existing} holds a different run; choose another --out or pass --overwrite (overwrite=True)"
            )
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_experiment(
    experiment: str,
    profile: str | None = None,
    out: Path | str | None = None,
    losses: list[str] | None = None,
    seeds: list[int] | None = None,
    epochs: int | None = None,
    schedule: str = "constant",
    alpha: float | None = None,
    data_root: Path | str | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    device: str | None = None,
    figures: bool = True,
    log=print,
) -> dict:
    """Run one experiment's grid of losses x seeds and return (and, with ``out``, write) its results.

    Parameters mirror the command line. ``losses`` are names such as ``"gdl+bl"``; the
    profile's list by default. Returns the dict written to ``out/results.json``: the
    provenance (data source, profile, device, torch version, seeds, date), every run
    (loss, seed, best epoch, metrics at the best epoch, full history) and the summary.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {list(EXPERIMENTS)}, got {experiment!r}")
    profile_name = resolve_profile(profile)
    settings: Profile = PROFILES[experiment][profile_name]
    if epochs is not None:
        settings = replace(settings, epochs=int(epochs))
    if seeds is not None:
        settings = replace(settings, seeds=tuple(int(s) for s in seeds))
    if alpha is not None:
        settings = replace(settings, alpha=float(alpha))
    loss_names = tuple(losses) if losses else settings.losses
    boundary_classes = (1,) if experiment == "drive" else None  # official: foreground only in binary tasks
    specs = {
        name: replace(
            LossSpec.parse(name),
            schedule=schedule,
            boundary_classes=boundary_classes,
            **({"alpha": settings.alpha} if "+" in name else {}),
        )
        for name in loss_names
    }  # parsing first: a bad name fails before any data is read
    torch_device = torch.device(device) if device else get_device()
    signature = {
        "experiment": experiment,
        "profile": asdict(settings),
        "losses": list(loss_names),
        "schedule": schedule,
    }
    out_dir = _prepare_out(out, signature, overwrite)

    if experiment == "drive":
        source, train_samples, val_samples, test_samples = _drive_data(settings, data_root)
        train_set = DriveDataset(train_samples, settings.image_size, settings.augment)
        val_set = DriveDataset(val_samples, settings.image_size)
        in_channels, num_classes = 3, 2
    else:
        source, train_patients, val_patients = _acdc_data(settings, data_root)
        train_set = AcdcDataset(train_patients, settings.image_size, settings.crop_mm, augment=settings.augment)
        val_set = AcdcDataset(val_patients, settings.image_size, settings.crop_mm)
        in_channels, num_classes = 1, 4

    banner = device_banner(torch_device)
    parameters = count_parameters(_build_model(settings, in_channels, num_classes))
    log(banner)
    log(
        f"Profile: {profile_name} ({settings.model.upper()}, {settings.image_size} px, {settings.epochs} epochs, "
        f"batch {settings.batch_size}, lr {settings.lr:g}, seeds {list(settings.seeds)}, "
        f"{parameters / 1e6:.2f} M parameters)"
    )
    log(source.describe())
    log(
        f"Sizes: {len(train_set)} training and {len(val_set)} validation "
        f"{'images' if experiment == 'drive' else 'slices'}; losses {list(loss_names)}; schedule {schedule}"
    )

    results = {
        "dataset": experiment,
        "data": {"kind": source.kind, "description": source.describe(), "note": source.note},
        "profile_name": profile_name,
        "profile": asdict(settings),
        "schedule": schedule,
        "device": banner,
        "device_type": torch_device.type,
        "torch": torch.__version__,
        "bl_tutorial": __version__,
        "seeds": list(settings.seeds),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": parameters,
        "sizes": {"train": len(train_set), "val": len(val_set)},
        "signature": signature,
        "runs": [],
    }
    if experiment == "drive":
        results["trivial"] = _trivial_drive(val_samples)
        results["val_ids"] = [s.id for s in val_samples]
    else:
        results["val_patients"] = [p.id for p in val_patients]
    config = TrainConfig(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        val_hd95=settings.val_hd95,
        quiet=quiet,
    )
    for seed in settings.seeds:
        for name, spec in specs.items():
            seed_everything(seed)
            model = _build_model(settings, in_channels, num_classes)
            began = time.perf_counter()
            result = train(
                model,
                train_set,
                val_set,
                spec,
                replace(config, seed=seed),
                torch_device,
                description=f"{name} seed {seed}",
            )
            if experiment == "drive":
                metrics = evaluate_drive(result.model, val_samples, val_set)
                first_probability = metrics.pop("_first_probability")
                if out_dir is not None and figures:
                    _save_drive_figures(
                        result.model,
                        name,
                        seed,
                        val_samples[0],
                        first_probability,
                        test_samples,
                        settings.image_size,
                        out_dir,
                    )
            else:
                metrics = evaluate_acdc(result.model, val_set)
                if out_dir is not None and figures:
                    _save_acdc_figure(result.model, name, seed, val_set, out_dir)
            elapsed = time.perf_counter() - began
            results["runs"].append(
                {
                    "loss": name,
                    "seed": seed,
                    "spec": asdict(spec),
                    "best_epoch": result.best_epoch,
                    "best_val_dice_training_size": result.best_score,
                    "metrics": metrics,
                    "time_s": elapsed,
                    "history": result.history,
                }
            )
            log(
                f"  {name:8s} seed {seed}: best epoch {result.best_epoch}, Dice {metrics['dice']:.3f} ({elapsed:.0f} s)"
            )
    results.update(summarize(results))
    if out_dir is not None:
        partial = out_dir / (RESULTS_FILE + ".part")
        partial.write_text(json.dumps(results, indent=1))
        os.replace(partial, out_dir / RESULTS_FILE)
    return results


REQUIRED_KEYS = ("dataset", "data", "profile_name", "device", "torch", "seeds", "date", "runs", "summary")


def load_results(path: Path | str) -> dict:
    """Read a ``results.json`` (or the folder holding it) written by :func:`run_experiment`.

    Raises ``FileNotFoundError`` if missing and ``ValueError`` if it lacks the provenance
    fields (dataset, data source, profile, device, torch version, seeds, date, runs).
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results file (run python -m bl_tutorial.experiments first)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    missing = [key for key in REQUIRED_KEYS if key not in results]
    if missing:
        raise ValueError(f"{path}: missing fields {missing}; was it written by bl_tutorial.experiments?")
    return results


def full_results(experiment: str, root: Path | str | None = None) -> dict | None:
    """The committed full-profile results of ``experiment``, or None when there are none.

    Looks for ``<root>/<experiment>-full/results.json`` (``root`` defaults to the
    repository's ``results/`` folder).
    """
    folder = Path(root) if root is not None else RESULTS_DIR
    path = folder / f"{experiment}-full" / RESULTS_FILE
    return load_results(path) if path.is_file() else None


def comparison_sentence(comparison: dict) -> str:
    """One sentence on whether a paired difference exceeds the seed-to-seed spread."""
    mean, spread = comparison["mean_difference"], comparison["baseline_seed_std"]
    head = f"{comparison['loss']} minus {comparison['baseline']}: {mean:+.3f} Dice"
    if spread is None:
        return (
            f"{head}, from a single seed: the spread between seeds is unknown, "
            "so this difference cannot be told apart from noise."
        )
    verdict = "exceeds" if abs(mean) > spread else "does not exceed"
    return (
        f"{head} (mean over {len(comparison['seeds'])} seeds), which {verdict} "
        f"the seed-to-seed standard deviation of {comparison['baseline']} ({spread:.3f})."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bl_tutorial.experiments",
        description="Train the report's DRIVE (UNet, four losses) or ACDC (ENet) experiments and save results.",
    )
    parser.add_argument("experiment", choices=EXPERIMENTS, help="which experiment")
    parser.add_argument(
        "--profile",
        choices=("fast", "full"),
        default=None,
        help=f"fast (CPU, minutes) or full (report settings, GPU); default ${PROFILE_ENV} or by device",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/EXPERIMENT-PROFILE)")
    parser.add_argument("--losses", default=None, help="comma-separated, e.g. gdl+bl,gdl,ce,ce+bl or bl,gdl")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's number of epochs")
    parser.add_argument(
        "--schedule",
        choices=("constant", "linear", "rebalance"),
        default="constant",
        help="alpha schedule of the boundary term",
    )
    parser.add_argument("--alpha", type=float, default=None, help="constant alpha (default 0.05 as in the report)")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="folder with the real data (else $BL_TUTORIAL_DATA or a stand-in)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    parser.add_argument("--overwrite", action="store_true", help="replace results of a different run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    profile = resolve_profile(args.profile)
    out = args.out or Path("runs") / f"{args.experiment}-{profile}"
    try:
        run_experiment(
            args.experiment,
            profile,
            out,
            losses=args.losses.split(",") if args.losses else None,
            seeds=[int(s) for s in args.seeds.split(",")] if args.seeds else None,
            epochs=args.epochs,
            schedule=args.schedule,
            alpha=args.alpha,
            data_root=args.data_root,
            overwrite=args.overwrite,
            quiet=args.quiet,
            device=args.device,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        parser.exit(2, f"error: {error}\n")
    print(f"Results written to {out / RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
