"""Per-sample classic augmentations: each operation is torchvision's, the draws follow the policies."""

import pytest
import torch
from torchvision.transforms import v2

import scipy.stats

from hydramix_core.classic import OPS, AutoAugment, apply_ops, beta_symmetric, cutmix, mixup, random_erasing, zeta_mixup
from hydramix_core.methods import method_parameter, parse_method

GEOMETRIC = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}


def _images(batch=6, size=32, seed=0):
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    images[1] = 7  # a flat image (autocontrast and equalize special cases)
    return images


@pytest.mark.parametrize("name", OPS)
def test_each_operation_matches_torchvision(name):
    images, reference = _images(), v2.TrivialAugmentWide()
    magnitudes = {"Posterize": [1.0, 4.0, 6.0], "Solarize": [0.0, 0.3, 0.9]}.get(name, [0.3, -0.45, 0.9, -0.05])
    if name in GEOMETRIC:
        magnitudes = [0.3, -0.45, 4.0, -7.0, 12.0, 29.5]
    for magnitude in magnitudes:
        expected = torch.stack([reference._apply_image_or_video_transform(image, name, magnitude, interpolation=v2.InterpolationMode.NEAREST,
                                                                          fill=reference._fill) for image in images])
        out = apply_ops(images, torch.full((6,), OPS.index(name)), torch.full((6,), magnitude, dtype=torch.float64))
        difference = (out.int() - expected.int()).abs()
        # torchvision blends with a fused multiply-add: a pixel may round one level apart
        assert difference.max() <= 1, (name, magnitude)
        assert (difference > 0).float().mean() < 0.02, (name, magnitude)


def test_operations_are_chosen_per_image():
    images = _images()
    op = torch.tensor([OPS.index(n) for n in ["Identity", "Invert", "Rotate", "Equalize", "Posterize", "Invert"]])
    out = apply_ops(images, op, torch.tensor([0.0, 0.0, 20.0, 0.0, 2.0, 0.0], dtype=torch.float64))
    assert torch.equal(out[0], images[0]) and torch.equal(out[1], 255 - images[1]) and torch.equal(out[5], 255 - images[5])
    assert torch.equal(out[4], images[4] & 0b11000000)


def test_autoaugment_draws_follow_the_cifar10_policy():
    policy = AutoAugment("autoaugment", image_size=32)
    subpolicies = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)._policies
    ops, magnitudes = policy.draw(40000, torch.Generator().manual_seed(0))
    for slot in range(2):
        expected = torch.zeros(len(OPS))
        for sub in subpolicies:
            name, probability, _ = sub[slot]
            expected[OPS.index(name)] += probability / len(subpolicies)
        expected[0] = 1 - expected.sum()  # not applied
        observed = torch.bincount(ops[slot], minlength=len(OPS)).float() / ops.shape[1]
        sd = (expected * (1 - expected) / ops.shape[1]).sqrt()
        assert ((observed - expected).abs() <= 5 * sd + 1e-9).all(), (slot, observed, expected)
    # each applied op carries one of the magnitudes the policy gives it, signed where torchvision signs it
    space = v2.AutoAugment._AUGMENTATION_SPACE
    for name in {sub[s][0] for sub in subpolicies for s in range(2)}:
        table, signed = space[name]
        values = table(10, 32, 32)
        allowed = {0.0} if values is None else {round(float(values[b or 0]), 5) for sub in subpolicies for s in range(2)
                                                 for n, _, b in [sub[s]] if n == name}
        drawn = magnitudes[ops == OPS.index(name)]
        assert {round(abs(float(m)), 5) for m in drawn.unique()} <= allowed, name
        assert ((drawn < 0).any() == (signed and max(allowed) > 0)), name
    # the two slots come from one sub-policy: a pair never seen in the policy never occurs
    pairs = {(OPS.index(a[0]), OPS.index(b[0])) for a, b in subpolicies}
    applied_both = (ops[0] > 0) & (ops[1] > 0)
    assert {(int(a), int(b)) for a, b in zip(ops[0][applied_both], ops[1][applied_both])} <= pairs


def test_trivialaugment_draws_one_uniform_operation_and_bin():
    policy = AutoAugment("trivialaugment", image_size=32)
    ops, magnitudes = policy.draw(42000, torch.Generator().manual_seed(1))
    names = list(v2.TrivialAugmentWide._AUGMENTATION_SPACE)
    counts = torch.bincount(ops[0], minlength=len(OPS))[[OPS.index(n) for n in names]].float()
    assert ops.shape[0] == 1 and (counts - 3000).abs().max() < 5 * (3000 * (1 - 1 / 14)) ** 0.5
    brightness = magnitudes[0][ops[0] == OPS.index("Brightness")]
    assert abs((brightness < 0).float().mean() - 0.5) < 0.05
    assert brightness.abs().max() <= 0.99 + 1e-6 and len(brightness.abs().unique()) == 31


def test_policy_runs_on_a_batch_with_one_draw_per_image():
    images = _images(batch=64).repeat_interleave(1, 0)
    images[:] = images[0]  # one image 64 times: per-image draws make the outputs differ
    out = AutoAugment("trivialaugment", image_size=32)(images, torch.Generator().manual_seed(2))
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert len({tuple(o.flatten()[:200].tolist()) for o in out}) > 8


def test_random_erasing_erases_about_half_with_boxes_of_the_right_size():
    images = torch.ones(2000, 3, 32, 32)
    out = random_erasing(images, torch.Generator().manual_seed(3))
    erased = (out[:, 0] == 0).float().flatten(1).mean(1)
    assert abs((erased > 0).float().mean() - 0.5) < 0.05
    assert erased[erased > 0].min() >= 0.01 and erased.max() <= 0.4
    assert torch.equal(out[:, 0], out[:, 2])  # all channels of a box


def test_mixup_and_cutmix_labels_match_what_was_pasted():
    images = torch.stack([torch.full((3, 32, 32), float(i)) for i in range(4)])
    labels = torch.tensor([0, 1, 2, 3])
    generator = torch.Generator().manual_seed(4)
    mixed, soft = cutmix(images, labels, 4, generator)
    from_partner = (mixed[:, 0] != images[:, 0, :1, :1]).float().mean((1, 2))
    assert torch.allclose(soft[torch.arange(4), labels.roll(1)], from_partner)
    assert torch.allclose(soft.sum(1), torch.ones(4))
    mixed, soft = mixup(images, labels, 4, generator)
    lam = soft[0, 0]
    assert torch.allclose(mixed[0], images[0] * lam + images[3] * (1 - lam))


def test_randaugment_draws_two_uniform_operations_at_bin_9():
    policy = AutoAugment("randaugment", image_size=32)
    ops, magnitudes = policy.draw(28000, torch.Generator().manual_seed(5))
    names = list(v2.RandAugment._AUGMENTATION_SPACE)
    assert ops.shape[0] == 2 and len(names) == 14
    counts = torch.bincount(ops.flatten(), minlength=len(OPS))[[OPS.index(n) for n in names]].float()
    assert counts.sum() == ops.numel() and (counts - 4000).abs().max() < 5 * (4000 * (1 - 1 / 14)) ** 0.5
    assert not (ops[0] == ops[1]).all()  # the two operations are drawn independently
    for name in ("Brightness", "Rotate", "TranslateX", "Posterize", "Solarize"):
        table = v2.RandAugment._AUGMENTATION_SPACE[name][0](31, 32, 32)
        drawn = magnitudes[ops == OPS.index(name)]
        assert torch.allclose(drawn.abs().unique().float(), table[9].abs().float().view(1)), name
    assert abs((magnitudes[ops == OPS.index("Rotate")] < 0).float().mean() - 0.5) < 0.05  # signed: a random sign
    assert (magnitudes[ops == OPS.index("Posterize")] > 0).all()  # unsigned


def test_zeta_mixup_weights_are_the_normalised_p_series_with_the_sample_first():
    batch, gamma = 12, 2.8
    images = torch.eye(batch)[:, :, None, None].expand(batch, batch, 2, 2).clone()  # image j is the indicator of j
    labels = torch.arange(batch) % 4
    mixed, soft = zeta_mixup(images, labels, 4, torch.Generator().manual_seed(6), n_mix=(2, 3, 4), gamma=gamma)
    weights = mixed[:, :, 0, 0]  # row b: the weight each image got in mix b
    terms = (weights > 0).sum(1)
    assert set(terms.tolist()) == {2, 3, 4}
    for row, t in zip(weights, terms.tolist()):
        p_series = torch.arange(1, t + 1, dtype=torch.float64) ** -gamma
        assert torch.allclose(row[row > 0].sort(descending=True).values.double(), p_series / p_series.sum(), atol=1e-6)
    assert torch.equal(weights.argmax(1), torch.arange(batch))  # rank 1: the sample itself
    assert torch.allclose(soft, weights @ torch.eye(4)[labels])  # labels mixed with the same weights
    partners = {tuple(torch.where(row > 0)[0].tolist()) for row in weights}
    assert len(partners) > batch // 2  # partners drawn per sample, not one order for the batch


def test_zeta_mixup_takes_its_number_of_images_from_the_choices():
    images = torch.eye(10)[:, :, None, None].clone()
    for choices in ((3,), (2, 10)):
        mixed, soft = zeta_mixup(images, torch.arange(10), 10, torch.Generator().manual_seed(7), n_mix=choices)
        assert set((mixed[:, :, 0, 0] > 0).sum(1).tolist()) == set(choices)
        assert torch.allclose(soft.sum(1), torch.ones(10)) and torch.allclose(soft, mixed[:, :, 0, 0])


def test_mixup_alpha_draws_beta_alpha_alpha():
    generator = torch.Generator().manual_seed(8)
    draws = torch.stack([beta_symmetric(0.2, generator, "cpu") for _ in range(3000)]).double().numpy()
    assert scipy.stats.kstest(draws, scipy.stats.beta(0.2, 0.2).cdf).pvalue > 1e-3
    assert scipy.stats.kstest(draws, scipy.stats.uniform().cdf).pvalue < 1e-6  # not alpha 1's U(0, 1)
    images, labels = torch.rand(4, 3, 2, 2), torch.arange(4)
    mixed, soft = mixup(images, labels, 4, torch.Generator().manual_seed(9), alpha=0.2)
    lam = soft[0, 0]
    assert torch.allclose(mixed[0], images[0] * lam + images[3] * (1 - lam))


def test_alpha_1_keeps_mixups_uniform_draw():
    images, labels = torch.rand(4, 3, 2, 2), torch.arange(4)
    _, soft = mixup(images, labels, 4, torch.Generator().manual_seed(10))
    assert soft[0, 0] == torch.rand((), generator=torch.Generator().manual_seed(10))


def test_method_names_carry_alpha_and_gamma():
    assert parse_method("mixup_a0.2") == ("mixup", False) and method_parameter("mixup_a0.2") == 0.2
    assert method_parameter("mixup") == 1.0 and method_parameter("zetamixup") == 2.8
    assert parse_method("zetamixup_g2.4+autoaugment") == ("zetamixup", True) and method_parameter("zetamixup_g2.4") == 2.4
    assert method_parameter("baseline") is None
    for bad in ("mixup_g2", "zetamixup_a1", "mixup_a0", "mixup_a", "cutmix_a0.2", "randaugment+mixup"):
        with pytest.raises(ValueError, match="Unknown method"):
            parse_method(bad)
