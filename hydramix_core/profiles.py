"""Study profiles (``profiles/<name>.yaml``): read one and check every value before any work.

A bad value is named with its file and key (``profiles/x.yaml: p_gen: ...``), never met
later as a traceback from deep inside a notebook or a sweep.
"""

from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path

import yaml

from .data import DATASETS
from .engine import ClassifierConfig
from .generator_files import GeneratorConfig
from .methods import parse_method

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
REQUIRED = ("dataset", "samples_per_class", "seeds", "methods", "generator")
OPTIONAL = ("device", "cpu_numerics", "cpu_workers", "p_gen", "p_gen_values", "classifier", "scorer", "images_per_class", "chimeramix",
            "clip_model", "clip_pretrained", "slurm")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


def load_profile(profile: str | os.PathLike) -> tuple[str, dict]:
    """(name, parameters) of ``profiles/<profile>.yaml``, or of a YAML file given by path, checked."""
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILES / f"{profile}.yaml"
    if not path.is_file():
        known = " ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise ProfileError(f"no profile {path} (have: {known})")
    try:
        parameters = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ProfileError(f"{path}: cannot be read as YAML ({error})") from None
    check_profile(parameters, where=str(path))
    return path.stem, parameters


def check_profile(profile, *, where: str = "profile") -> None:
    def bad(key: str, why: str):
        raise ProfileError(f"{where}: {key}: {why}")

    if not isinstance(profile, dict):
        bad("(top level)", f"must be a mapping of keys to values, got {type(profile).__name__}")
    for key in REQUIRED:
        if key not in profile:
            bad(key, "missing")
    unknown = sorted(set(profile) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        bad(", ".join(map(str, unknown)), f"unknown key (known: {', '.join(REQUIRED + OPTIONAL)})")
    dataset = profile["dataset"]
    if not isinstance(dataset, str) or not (dataset in DATASETS or Path(dataset).expanduser().is_dir()):
        bad("dataset", f"{dataset!r} is neither one of {', '.join(DATASETS)} nor an existing folder")
    _int_list(profile["samples_per_class"], "samples_per_class", minimum=1, bad=bad)
    _int_list(profile["seeds"], "seeds", minimum=0, bad=bad)
    methods = profile["methods"]
    if not isinstance(methods, list) or not methods:
        bad("methods", f"must be a non-empty list of method names, got {methods!r}")
    for method in methods:
        try:
            parse_method(str(method))
        except ValueError as error:
            bad("methods", str(error))
    if "p_gen" in profile:
        _probability(profile["p_gen"], "p_gen", bad)
    values = profile.get("p_gen_values") or []
    if not isinstance(values, list):
        bad("p_gen_values", f"must be a list of probabilities, got {values!r}")
    for value in values:
        _probability(value, "p_gen_values", bad)
    device = profile.get("device", "auto")
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        bad("device", f"must be auto, cpu or cuda, got {device!r}")
    if profile.get("cpu_numerics", "native") not in ("native", "portable"):
        bad("cpu_numerics", f"must be native or portable, got {profile['cpu_numerics']!r}")
    if profile.get("scorer", "clip") not in ("clip", "surrogate"):
        bad("scorer", f"must be clip or surrogate, got {profile['scorer']!r}")
    if "cpu_workers" in profile:
        _int_list([profile["cpu_workers"]], "cpu_workers", minimum=1, bad=bad)
    if "images_per_class" in profile:
        _int_list([profile["images_per_class"]], "images_per_class", minimum=1, bad=bad)
    for key, config in (("generator", GeneratorConfig), ("classifier", ClassifierConfig)):
        section = profile.get(key) or {}
        if not isinstance(section, dict):
            bad(key, f"must be a mapping of settings, got {section!r}")
        known = {f.name for f in fields(config)} - {"dataset", "samples_per_class", "seed"}
        for name in section:
            if name not in known:
                bad(f"{key}.{name}", f"unknown setting (known: {', '.join(sorted(known))})")
        try:
            config(dataset=str(dataset), samples_per_class=1, seed=0, **section)
        except (TypeError, ValueError) as error:
            bad(key, str(error))
    if not isinstance(profile.get("slurm") or {}, dict):
        bad("slurm", f"must be a mapping of resources, got {profile['slurm']!r}")


def _int_list(values, key: str, *, minimum: int, bad) -> None:
    if not isinstance(values, list) or not values:
        bad(key, f"must be a non-empty list of integers, got {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            bad(key, f"values must be integers >= {minimum}, got {value!r}")


def _probability(value, key: str, bad) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        bad(key, f"must be a number in [0, 1], got {value!r}")
