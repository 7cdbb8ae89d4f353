"""Which device to train on, a one-line banner saying so, and seeding (every notebook).

Readers run the book on laptops, in Colab and on GPU servers. Colab silently runs on a
CPU unless a GPU runtime is chosen, so every notebook prints :func:`device_banner` first.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

FORCE_CPU_ENV = "BL_TUTORIAL_FORCE_CPU"
"""Set this environment variable to 1 to ignore any GPU (e.g. to reproduce CI)."""

__all__ = [
    "get_device",
    "resolve_device",
    "device_banner",
    "seed_everything",
    "seed_worker",
    "rng_state",
    "set_rng_state",
    "FORCE_CPU_ENV",
]

DEVICE_FORMS = "'cpu', 'cuda', 'cuda:N' or 'mps'"
"""The device names :func:`resolve_device` accepts."""


def _force_cpu() -> bool:
    return os.environ.get(FORCE_CPU_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU.

    Setting the environment variable ``BL_TUTORIAL_FORCE_CPU=1`` forces the CPU.

    Examples
    --------
    >>> get_device().type in {"cuda", "mps", "cpu"}
    True
    """
    if _force_cpu():
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """The device to use: :func:`get_device` for None, else ``device`` once checked to exist here.

    Parameters
    ----------
    device : torch.device, str or None
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (or the same as a
        ``torch.device``); None picks the best available one.

    Returns
    -------
    torch.device

    Raises
    ------
    TypeError
        ``device`` is neither a string, a ``torch.device`` nor None.
    ValueError
        The string is not a device name, or the device is not available on this machine
        (no CUDA, a GPU index out of range, no Apple MPS): the message says which are.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device(None) == get_device()
    True
    """
    if device is None:
        return get_device()
    if isinstance(device, str):
        try:
            device = torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be {DEVICE_FORMS}, got {device!r}") from None
    elif not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device, a string or None, got {type(device).__name__} {device!r}")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be {DEVICE_FORMS}, got {str(device)!r}")
    if not _is_available(device):
        available = ", ".join(_available_devices())
        raise ValueError(f"device {str(device)!r} is not available on this machine (available: {available})")
    return device


def _is_available(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    if device.type == "mps":
        return _mps_available() and device.index in (None, 0)
    return True  # the CPU


def _available_devices() -> list[str]:
    """Names of the devices this machine has: "cpu", then "cuda:0"... and "mps" where present."""
    cuda = [f"cuda:{index}" for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *cuda, *(["mps"] if _mps_available() else [])]


def device_banner(device: torch.device | str | None = None) -> str:
    """One line: the device, its name and memory, and the torch version.

    On a CPU it says so plainly and tells Colab users how to get a GPU. A device that
    this machine does not have is an error (see :func:`resolve_device`), never announced.

    Examples
    --------
    >>> device_banner("cpu").startswith("Device: CPU")
    True
    """
    device = resolve_device(device)
    version = f"torch {torch.__version__}"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        memory = props.total_memory / 2**30
        return f"Device: GPU {props.name} ({memory:.1f} GiB, CUDA {torch.version.cuda}) | {version}"
    if device.type == "mps":
        return f"Device: Apple GPU (MPS) | {version}"
    reason = "forced by BL_TUTORIAL_FORCE_CPU" if _force_cpu() else "no GPU found"
    return (
        f"Device: CPU ({torch.get_num_threads()} threads; {reason}) | {version} | "
        "in Colab choose Runtime > Change runtime type > GPU for the full profile"
    )


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and torch's generators (all GPUs included).

    Parameters
    ----------
    seed : int
        A non-negative integer.
    deterministic : bool
        Also ask torch for deterministic algorithms (slower on GPU; CPU runs are already
        reproducible with a fixed seed and thread count).

    Examples
    --------
    >>> seed_everything(0); a = torch.rand(1)
    >>> seed_everything(0); bool((a == torch.rand(1)).all())
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoaders: seeds NumPy and ``random`` in each worker from torch's seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def rng_state() -> dict:
    """The state of every random generator (torch, CUDA, NumPy, Python), to save in a checkpoint."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
        "numpy_rest": [int(numpy_state[2]), int(numpy_state[3]), float(numpy_state[4])],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore the generators from :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    position, has_gauss, cached = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])
