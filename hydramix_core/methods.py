"""Augmentation methods by name: which exist, which draw from a trained generator (and with
which masks), ChimeraMix's replacement rule, and the batch augmentation a run's method needs.

    base, with_autoaugment = parse_method("hydramix+autoaugment")    # ("hydramix", True)
    augment = make_augment(config, few, generator_run)                # augment.HydraMixAugment or None

The per-sample classic methods themselves are in classic.py; the engine applies them.
'harmonic' trains the Harmonic variant of the run's WideResNet (classifier.py) without augmentation
beyond crop and flip: the strongest published non-generative baseline of the GEM benchmark.
"""

from __future__ import annotations

import re

from .augment import HydraMixAugment
from .data import ImageSet
from .generator_files import GeneratorConfig
from .masks import cached_segments

BASE_METHODS = ("baseline", "cutout", "random_erasing", "autoaugment", "trivialaugment", "randaugment", "mixup",
                "zetamixup", "harmonic", "cutmix", "chimeramix_grid", "chimeramix_seg", "hydramix", "hydramix_direct", "chimeramix_grid_direct",
                "chimeramix_seg_direct")
# Methods that draw from a trained generator, and the mask kind that generator was trained with.
GENERATOR_METHODS = {"hydramix": "hydramix", "chimeramix_grid": "chimeramix_grid", "chimeramix_seg": "chimeramix_seg"}
DIRECT_METHODS = {"hydramix_direct": "hydramix", "chimeramix_grid_direct": "chimeramix_grid",
                  "chimeramix_seg_direct": "chimeramix_seg"}


# Methods with a parameter, which a name may set: mixup_a0.2 (MixUp's Beta(alpha, alpha)) and
# zetamixup_g2.4 (zeta-mixup's p-series exponent gamma); the bare names use these defaults.
PARAMETERS = {"mixup": ("a", 1.0), "zetamixup": ("g", 2.8)}
_PARAMETER = re.compile(r"^(mixup|zetamixup)_([ag])(\d+(?:\.\d+)?)$")

# ChimeraMix's own protocol: the whole batch replaced with probability 0.5, mixing 2 images.
CHIMERAMIX_RULE = {"p_gen": 0.5, "per_batch": True, "n_mix": (2,)}


def parse_method(method: str) -> tuple[str, bool]:
    """'hydramix+autoaugment' -> ('hydramix', True), 'mixup_a0.2' -> ('mixup', False). Raises on unknown names."""
    parts = method.split("+")
    base, extras = parts[0], parts[1:]
    match = _PARAMETER.match(base)
    if match and PARAMETERS[match[1]][0] == match[2] and float(match[3]) > 0:
        base = match[1]
    if base not in BASE_METHODS or any(extra != "autoaugment" for extra in extras) or (extras and base == "autoaugment"):
        raise ValueError(f"Unknown method {method!r}: use one of {', '.join(BASE_METHODS)}, optionally '+autoaugment' "
                         f"(MixUp's alpha and zeta-mixup's gamma as mixup_a0.2, zetamixup_g2.4)")
    return base, bool(extras) or base == "autoaugment"


def method_parameter(method: str) -> float | None:
    """MixUp's alpha or zeta-mixup's gamma for ``method`` ('mixup_a0.2' -> 0.2, 'mixup' -> 1.0), else None."""
    base, _ = parse_method(method)
    if base not in PARAMETERS:
        return None
    match = _PARAMETER.match(method.split("+")[0])
    return float(match[3]) if match else PARAMETERS[base][1]


def method_rule(method: str) -> dict:
    """The protocol fields a method fixes itself (ChimeraMix's rule), else none."""
    base, _ = parse_method(method)
    return dict(CHIMERAMIX_RULE) if base.startswith("chimeramix") else {}


def make_augment(config, few: ImageSet, generator_run=None, segments_cache=None, device=None) -> HydraMixAugment | None:
    """The batch-level HydraMix/ChimeraMix augmentation the method of ``config`` (an
    engine.ClassifierConfig) needs, None for the classic ones; ``device``: where the direct
    variants keep their pool (default: the images')."""
    base, _ = parse_method(config.method)
    if base in GENERATOR_METHODS:
        if generator_run is None:
            raise ValueError(f"method {config.method!r} needs a trained generator for {config.run_name}")
        if generator_run.config.mask_kind != GENERATOR_METHODS[base]:
            raise ValueError(f"method {config.method!r} needs a generator trained with {GENERATOR_METHODS[base]} masks, "
                             f"got one trained with {generator_run.config.mask_kind}")
        identity = {"dataset": config.dataset, "samples_per_class": config.samples_per_class, "seed": config.seed}
        if {k: generator_run.split[k] for k in identity} != identity:
            raise ValueError(f"the generator was trained on {generator_run.split}, not on {identity}")
        n_mix = config.n_mix or generator_run.config.n_mix
        return HydraMixAugment(generator_run.generator, few.images, few.labels, generator_run.segments, p_gen=config.p_gen,
                               n_mix=n_mix, per_batch=config.per_batch, crop_pad=generator_run.config.crop_pad,
                               bank_size=config.bank_size, bank_refresh=config.bank_refresh)
    if base in DIRECT_METHODS:
        kind = DIRECT_METHODS[base]
        # Segment at the size and scale the generator would use, so direct and generated masks match.
        sizes = GeneratorConfig(dataset=config.dataset, samples_per_class=config.samples_per_class,
                                seed=config.seed).resolved(few.image_size)
        segments = None if kind == "chimeramix_grid" else cached_segments(
            few.images, segments_cache, key=few.fingerprint(), size=sizes.working_size, scale=sizes.seg_scale,
            min_size=sizes.seg_min_size)
        n_mix = config.n_mix or ((2,) if kind.startswith("chimeramix") else (2, 3, 4))
        return HydraMixAugment(None, few.images, few.labels, segments, p_gen=config.p_gen, n_mix=n_mix, mask_kind=kind,
                               per_batch=config.per_batch, device=device)
    return None
