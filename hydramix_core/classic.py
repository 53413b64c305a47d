"""Classic augmentations drawn per sample on the device, with no host synchronisation.

    policy = AutoAugment("autoaugment", image_size=32, device=device)    # or "trivialaugment", "randaugment"
    images = policy(images, generator)                    # uint8 [B,3,H,W], one draw per image
    images = random_erasing(images, generator)            # float [B,3,H,W] in [0,1]
    images, soft = mixup(images, labels, 10, generator)   # one lambda per batch, as v2.MixUp
    images, soft = zeta_mixup(images, labels, 10, generator, n_mix=(2, 3, 4))  # T images per sample

Why not torchvision v2 or kornia: v2's AutoAugment, TrivialAugment and RandomErasing draw
their parameters on the host with the global generator and apply one draw to a whole call,
and kornia's policies pick one sub-policy per batch and branch on host values; neither can
be captured in a CUDA graph nor run with a per-run generator. Here every random number
comes from the ``generator`` argument (CPU or CUDA) and every choice is a ``torch.where``
over the batch, so a training step that uses them is one static graph. The operations
themselves, their magnitude tables and AutoAugment's sub-policies are torchvision's (read
from ``v2.AutoAugment`` / ``v2.TrivialAugmentWide`` / ``v2.RandAugment``); each operation matches torchvision's
functional one (tests/test_classic.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
       "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize", "Invert")
_GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


class AutoAugment:
    """Per-sample AutoAugment (CIFAR-10 policy at <= 32 px, ImageNet's above), TrivialAugmentWide or RandAugment.

    AutoAugment: each image draws one of the policy's sub-policies and applies its two
    operations, each with its own probability, at the sub-policy's magnitude with a random
    sign for signed operations. TrivialAugmentWide: each image draws one operation, one of
    31 magnitude bins and a sign. RandAugment (torchvision's defaults): each image draws 2
    operations in turn, each uniformly from the table, at magnitude bin 9 of 31, each with a sign.
    """

    def __init__(self, kind: str, *, image_size: int, device: torch.device | str = "cpu"):
        if kind == "autoaugment":
            policy = v2.AutoAugmentPolicy.CIFAR10 if image_size <= 32 else v2.AutoAugmentPolicy.IMAGENET
            source, bins = v2.AutoAugment(policy), 10
        elif kind == "trivialaugment":
            source, bins = v2.TrivialAugmentWide(), 31
        elif kind == "randaugment":
            source = v2.RandAugment()  # torchvision's defaults: 2 operations at magnitude bin 9 of 31
            bins, self.num_ops, self.magnitude_bin = source.num_magnitude_bins, source.num_ops, source.magnitude
        else:
            raise ValueError(f"Unknown policy {kind!r}: use autoaugment, trivialaugment or randaugment")
        self.kind, self.device = kind, torch.device(device)
        space = source._AUGMENTATION_SPACE
        magnitudes = torch.zeros(len(OPS), bins, dtype=torch.float64)
        signed = torch.zeros(len(OPS), dtype=torch.bool)
        for name, (table, is_signed) in space.items():
            values = table(bins, image_size, image_size)
            if values is not None and values.ndim > 0:
                magnitudes[OPS.index(name)] = values.double()
            signed[OPS.index(name)] = is_signed
        self.magnitudes, self.signed = magnitudes.to(self.device), signed.to(self.device)
        if kind == "autoaugment":
            subpolicies = source._policies
            self.sub_ops = torch.tensor([[OPS.index(op) for op, _, _ in sub] for sub in subpolicies], device=self.device)
            self.sub_probs = torch.tensor([[p for _, p, _ in sub] for sub in subpolicies], dtype=torch.float64,
                                          device=self.device)
            self.sub_bins = torch.tensor([[b or 0 for _, _, b in sub] for sub in subpolicies], device=self.device)
        else:
            self.ops = torch.tensor([OPS.index(name) for name in space], device=self.device)
        self.used = sorted({OPS[i] for i in (self.sub_ops.unique().tolist() if kind == "autoaugment"
                                             else self.ops.tolist())})

    def draw(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Operations [S, B] (indices into OPS) and signed magnitudes [S, B], S operations in turn."""
        device = self.device

        def uniform(*shape):
            return torch.rand(shape, generator=generator, device=device, dtype=torch.float64)

        if self.kind == "autoaugment":
            sub = torch.randint(len(self.sub_ops), (batch,), generator=generator, device=device)
            ops, bins = self.sub_ops[sub].T, self.sub_bins[sub].T  # [2, B]
            applied = uniform(2, batch) <= self.sub_probs[sub].T
            ops = torch.where(applied, ops, torch.zeros_like(ops))
        elif self.kind == "randaugment":
            ops = self.ops[torch.randint(len(self.ops), (self.num_ops, batch), generator=generator, device=device)]
            bins = torch.full_like(ops, self.magnitude_bin)
        else:
            ops = self.ops[torch.randint(len(self.ops), (1, batch), generator=generator, device=device)]
            bins = torch.randint(self.magnitudes.shape[1], (1, batch), generator=generator, device=device)
        magnitude = self.magnitudes[ops, bins]
        negative = self.signed[ops] & (uniform(*ops.shape) <= 0.5)
        return ops, torch.where(negative, -magnitude, magnitude)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        ops, magnitudes = self.draw(len(images), generator)
        for op, magnitude in zip(ops, magnitudes):
            images = apply_ops(images, op, magnitude, only=self.used)
        return images


def apply_ops(images: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, *, only=OPS) -> torch.Tensor:
    """Apply operation ``OPS[op[b]]`` at ``magnitude[b]`` to image b: uint8 [B,3,H,W] -> uint8.

    Every operation in ``only`` is computed for the whole batch and selected per image
    (static shapes; cheap at the protocol's batch sizes).
    """
    out = images
    geometric = [name for name in _GEOMETRIC if name in only]
    if geometric:
        warped = _affine(images, op, magnitude)
        is_geometric = sum(op == OPS.index(name) for name in geometric).bool()
        out = torch.where(is_geometric[:, None, None, None], warped, out)
    factor = (1.0 + magnitude).float()[:, None, None, None]
    other_weight = (-magnitude).float()[:, None, None, None]  # 1 - factor, rounded once as torchvision does
    floats = images.float()
    gray = TF.rgb_to_grayscale(images).float()  # floor of the luma, as torchvision's colour ops use
    candidates = {
        "Brightness": lambda: _blend(floats, torch.zeros_like(floats), factor, other_weight),
        "Color": lambda: _blend(floats, gray, factor, other_weight),
        "Contrast": lambda: _blend(floats, gray.mean(dim=(-3, -2, -1), keepdim=True), factor, other_weight),
        "Sharpness": lambda: _sharpen(floats, other_weight),
        "Posterize": lambda: images & _posterize_mask(magnitude)[:, None, None, None],
        "Solarize": lambda: torch.where(floats >= 255 * magnitude.float()[:, None, None, None], 255 - images, images),
        "AutoContrast": lambda: _autocontrast(floats),
        "Equalize": lambda: TF.equalize(images),
        "Invert": lambda: TF.invert(images),
    }
    for name, compute in candidates.items():
        if name in only:
            out = torch.where((op == OPS.index(name))[:, None, None, None], compute(), out)
    return out


def _blend(images, other, factor, other_weight) -> torch.Tensor:
    """torchvision's blend with a per-image factor: float inputs in [0, 255] -> uint8 (truncated)."""
    return (images * factor + other * other_weight).clamp(0, 255).to(torch.uint8)


def _sharpen(images: torch.Tensor, other_weight: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_sharpness: blend the interior with a rounded 3x3 smoothing, borders kept."""
    centre = (torch.arange(9, device=images.device) == 4).view(3, 3)  # built on the device: no copy in a CUDA graph
    kernel = (1.0 + 4.0 * centre) / 13.0
    blurred = F.conv2d(images, kernel.expand(3, 1, 3, 3), groups=3).round()
    interior = images[..., 1:-1, 1:-1]
    sharpened = images.clone()
    sharpened[..., 1:-1, 1:-1] = interior + other_weight * (blurred - interior)
    return sharpened.clamp(0, 255).to(torch.uint8)


def _posterize_mask(magnitude: torch.Tensor) -> torch.Tensor:
    bits = magnitude.trunc().long().clamp(0, 8)
    return ((255 << (8 - bits)) & 255).to(torch.uint8)


def _autocontrast(images: torch.Tensor) -> torch.Tensor:
    """torchvision's autocontrast with ``torch.where`` in place of masked assignment (no sync)."""
    low = images.amin(dim=(-2, -1), keepdim=True)
    high = images.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    scale = torch.where(flat, torch.ones_like(high), (high - low) / 255)
    low = torch.where(flat, torch.zeros_like(low), low)
    return ((images - low) / scale).clamp(0, 255).to(torch.uint8)


def _affine(images: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Each image's shear / translation / rotation as torchvision's affine and rotate compute it
    (inverse matrix about the centre or corner, nearest neighbour, zero fill), in one grid_sample."""
    batch, _, height, width = images.shape
    m = magnitude.double()
    zero = torch.zeros_like(m)

    def where(name, value, default=zero):
        return torch.where(op == OPS.index(name), value, default)

    angle = torch.deg2rad(where("Rotate", -m))  # rotate(angle) is affine(-angle)
    shear_x, shear_y = where("ShearX", torch.atan(m)), where("ShearY", torch.atan(m))
    tx, ty = where("TranslateX", m.trunc()), where("TranslateY", m.trunc())
    shear = (op == OPS.index("ShearX")) | (op == OPS.index("ShearY"))
    cx = torch.where(shear, torch.full_like(m, -0.5 * width), zero)  # shears pivot on the top-left corner
    cy = torch.where(shear, torch.full_like(m, -0.5 * height), zero)
    a = torch.cos(angle - shear_y) / torch.cos(shear_y)
    b = -(a * torch.tan(shear_x) + torch.sin(angle))
    c = torch.sin(angle - shear_y) / torch.cos(shear_y)
    d = torch.cos(angle) - c * torch.tan(shear_x)
    row0 = torch.stack([d, -b, cx - d * (cx + tx) + b * (cy + ty)], dim=1)
    row1 = torch.stack([-c, a, cy + c * (cx + tx) - a * (cy + ty)], dim=1)
    theta = torch.stack([row0, row1], dim=1).float()  # [B, 2, 3] inverse maps, in centred pixel units
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, width, device=images.device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, height, device=images.device)
    base = torch.stack([xs.expand(height, width), ys[:, None].expand(height, width),
                        torch.ones(height, width, device=images.device)], dim=-1).view(1, -1, 3)
    scale = torch.stack([torch.full((), 0.5 * width, device=images.device),
                         torch.full((), 0.5 * height, device=images.device)])  # no host tensor in a CUDA graph
    grid = base.expand(batch, -1, -1).bmm(theta.transpose(1, 2) / scale).view(batch, height, width, 2)
    warped = F.grid_sample(images.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return warped.round().to(torch.uint8)


def random_erasing(images: torch.Tensor, generator: torch.Generator, *, p: float = 0.5, scale=(0.02, 0.33),
                   ratio=(0.3, 3.3), attempts: int = 10) -> torch.Tensor:
    """v2.RandomErasing(p, scale, ratio, value=0) per image: up to ``attempts`` boxes are drawn, the
    first that fits is erased; float [B,3,H,W] -> same."""
    batch, _, height, width = images.shape
    device, area = images.device, height * width

    def uniform(*shape):
        return torch.rand(shape, generator=generator, device=device)

    erase = uniform(batch) < p
    target = area * (scale[0] + (scale[1] - scale[0]) * uniform(batch, attempts))
    aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * uniform(batch, attempts))
    box_h = torch.sqrt(target * aspect).round().long()
    box_w = torch.sqrt(target / aspect).round().long()
    fits = (box_h < height) & (box_w < width)
    first = fits.int().argmax(1, keepdim=True)  # the first attempt that fits
    box_h, box_w = box_h.gather(1, first)[:, 0], box_w.gather(1, first)[:, 0]
    erase &= fits.any(1)
    top = (uniform(batch) * (height - box_h + 1)).long()
    left = (uniform(batch) * (width - box_w + 1)).long()
    return images * (~(_box(top, left, box_h, box_w, height, width) & erase[:, None, None]))[:, None].to(images.dtype)


def cutout(images: torch.Tensor, generator: torch.Generator, *, size: int) -> torch.Tensor:
    """Zero one size x size square per image at a uniform centre (it may stick out of the image)."""
    batch, _, height, width = images.shape
    top = torch.randint(0, height, (batch,), generator=generator, device=images.device) - size // 2
    left = torch.randint(0, width, (batch,), generator=generator, device=images.device) - size // 2
    size_t = torch.full_like(top, size)
    return images * (~_box(top, left, size_t, size_t, height, width))[:, None].to(images.dtype)


def _box(top, left, box_h, box_w, height: int, width: int) -> torch.Tensor:
    """bool [B, H, W]: True inside each image's box."""
    rows = torch.arange(height, device=top.device)[None, :, None]
    cols = torch.arange(width, device=top.device)[None, None, :]
    return ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
            & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]))


def mixup(images: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator, *,
          alpha: float = 1.0):
    """v2.MixUp(alpha): one lambda ~ Beta(alpha, alpha) per batch, partners by rolling the batch by
    one; returns images and soft labels [B, C]. alpha 1 draws U(0, 1) (= Beta(1, 1))."""
    lam = (torch.rand((), generator=generator, device=images.device) if alpha == 1.0
           else beta_symmetric(alpha, generator, images.device))
    soft = _one_hot(labels, num_classes)
    return images * lam + images.roll(1, 0) * (1 - lam), soft * lam + soft.roll(1, 0) * (1 - lam)


def beta_symmetric(alpha: float, generator: torch.Generator, device, *, attempts: int = 64) -> torch.Tensor:
    """One draw of Beta(alpha, alpha) from ``generator``, without a host synchronisation.

    Written here because torch's Beta and Gamma samplers take no generator argument. Johnk's
    method: X = U^(1/a), Y = V^(1/a) is accepted when X + Y <= 1 and gives X / (X + Y) (in logs,
    so small alpha does not underflow). All attempts are drawn at once and the first accepted one
    is taken; each is accepted with probability Gamma(1+a)^2 / Gamma(1+2a) (0.95 at a = 0.2, 0.5
    at a = 1), so 64 attempts all fail with probability below 1e-19 for a <= 1 (then 0.5).
    """
    log_x, log_y = torch.rand(2, attempts, generator=generator, device=device, dtype=torch.float64).log() / alpha
    accepted = torch.logaddexp(log_x, log_y) <= 0
    value = torch.sigmoid(log_x - log_y)
    first = accepted.int().argmax().view(1)  # the first accepted attempt (0 if none is)
    return torch.where(accepted.any(), value.gather(0, first)[0], 0.5).float()


def zeta_mixup(images: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator, *,
               n_mix=(2, 3, 4), gamma: float = 2.8):
    """zeta-mixup (Abhishek et al., J. Big Data 2024) with T images per mix drawn per sample from ``n_mix``.

    Each sample b becomes sum_r w_r x_(r) over ranks r = 1..T: rank 1 is b itself, ranks 2..T are
    other images of the batch in a random order, and w_r = r^-gamma / sum_{j<=T} j^-gamma (a
    normalised p-series; with T the batch size this is the authors' definition). Labels are
    mixed with the same weights (soft labels [B, C]).
    """
    batch, device = len(images), images.device
    keys = torch.rand(batch, batch, generator=generator, device=device) - 2 * torch.eye(batch, device=device)
    order = keys.argsort(dim=1)  # row b: b first, then the others in a random order
    pick = torch.randint(len(n_mix), (batch,), generator=generator, device=device)
    terms = torch.full((batch,), n_mix[0], device=device)
    for index, n in enumerate(n_mix[1:], start=1):
        terms = torch.where(pick == index, n, terms)
    rank = torch.arange(1, batch + 1, device=device, dtype=torch.float64)
    weights = rank.pow(-gamma) * (rank <= terms[:, None])
    weights = (weights / weights.sum(1, keepdim=True)).float()
    mixing = torch.zeros(batch, batch, device=device).scatter_(1, order, weights)  # [B, B], rows sum to 1
    mixed = (mixing @ images.flatten(1)).view_as(images)
    return mixed, mixing @ _one_hot(labels, num_classes)


def cutmix(images: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator):
    """v2.CutMix(alpha=1): one box per batch of area ~ (1 - lambda) at a uniform centre, pasted from
    the batch rolled by one; labels weighted by the pasted area."""
    _, _, height, width = images.shape
    device = images.device
    lam = torch.rand((), generator=generator, device=device)
    centre_x = torch.randint(width, (), generator=generator, device=device)
    centre_y = torch.randint(height, (), generator=generator, device=device)
    half = 0.5 * torch.sqrt(1.0 - lam)
    half_w, half_h = (half * width).long(), (half * height).long()
    x1, x2 = (centre_x - half_w).clamp(min=0), (centre_x + half_w).clamp(max=width)
    y1, y2 = (centre_y - half_h).clamp(min=0), (centre_y + half_h).clamp(max=height)
    inside = _box(y1.view(1), x1.view(1), (y2 - y1).view(1), (x2 - x1).view(1), height, width)[:, None]  # [1,1,H,W]
    mixed = torch.where(inside, images.roll(1, 0), images)
    kept = 1.0 - ((x2 - x1) * (y2 - y1)).float() / (height * width)
    soft = _one_hot(labels, num_classes)
    return mixed, soft * kept + soft.roll(1, 0) * (1 - kept)


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    # scatter rather than F.one_hot, which checks the label range on the host
    return torch.zeros(len(labels), num_classes, device=labels.device).scatter_(1, labels[:, None], 1.0)
