import pytest
import torch

from hydramix_core.losses import LaplacianPyramidLoss, lsgan_loss
from hydramix_core.models import ClassPool, Decoder, Discriminator, Encoder, Generator, mix


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_official_models():
    assert _count(Encoder(ngf=64)) == 2_738_816
    assert _count(Decoder(ngf=64)) == 2_532_547
    assert _count(Discriminator(ndf=64)) == 2_764_737


@pytest.mark.parametrize("image_size,working_size", [(32, 64), (96, 96)])
def test_shapes(image_size, working_size):
    torch.manual_seed(0)
    generator = Generator(ngf=8, working_size=working_size, mask_kind="grid")
    images = torch.randint(0, 256, (3, 3, image_size, image_size), dtype=torch.uint8)
    features = generator.encode(torch.rand(3, 2, 3, working_size, working_size))
    assert features.shape == (3, 2, 32, working_size // 4, working_size // 4)
    out = generator.sample(images, torch.tensor([0, 0, 1]), None, n_mix=3)
    assert out.shape == (3, 3, image_size, image_size) and out.min() >= 0 and out.max() <= 1
    assert Discriminator(ndf=8)(torch.rand(2, 3, working_size, working_size)).shape == (2, 1, working_size // 16, working_size // 16)


def test_one_hot_mask_reconstructs_that_image_and_decoder_blocks_matter():
    torch.manual_seed(0)
    generator = Generator(ngf=8)
    images = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    features = generator.encode(images)
    one_hot = torch.zeros(2, 3, 16, 16)
    one_hot[:, 1] = 1
    assert torch.allclose(generator(images, one_hot), generator.decode(features[:, 1]), atol=1e-6)
    before = generator.decode(features[:, 0])
    with torch.no_grad():
        generator.decoder.net[0].block[1].weight.mul_(3)  # first decoder residual block
    assert not torch.allclose(generator.decode(features[:, 0]), before)
    with pytest.raises(ValueError, match="do not match"):
        mix(features, one_hot[:, :2])


def test_partners_share_the_class_uniformly_and_singletons_repeat():
    labels = torch.tensor([2, 0, 1, 2, 1, 2])
    classes = ClassPool(labels)
    partners = classes.draw(labels, 3, torch.Generator().manual_seed(0))
    assert partners.shape == (6, 3) and (labels[partners] == labels[:, None]).all()
    assert (partners[1] == 1).all()  # class 0 has one image: it mixes with itself
    draws = classes.draw(torch.full((30_000,), 2), 1, torch.Generator().manual_seed(1))[:, 0]
    shares = torch.bincount(draws, minlength=6)[[0, 3, 5]] / 30_000
    assert (shares - 1 / 3).abs().max() < 0.015  # class 2's three images equally often (sd 0.0027)
    with pytest.raises(ValueError, match="no images of class"):
        classes.check(torch.tensor([5]))


def test_sample_rejects_bad_inputs():
    generator = Generator(ngf=8)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(ValueError, match="n_mix must be >= 1"):
        generator.sample(images, torch.tensor([0, 0]), torch.zeros(2, 64, 64, dtype=torch.long), n_mix=0)
    with pytest.raises(ValueError, match="working size"):
        generator.sample(images, torch.tensor([0, 0]), torch.zeros(2, 32, 32, dtype=torch.long), n_mix=2)


def test_losses_on_known_inputs():
    laplacian = LaplacianPyramidLoss(levels=3)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert laplacian(x, x).item() == 0
    assert laplacian(x, y).item() > 0
    assert torch.allclose(laplacian(x, y), laplacian(x - y, torch.zeros_like(x)), atol=1e-6)  # the pyramid is linear
    assert len(laplacian.pyramid(x)) == 3 and laplacian.pyramid(x)[2].shape == (2, 3, 8, 8)
    scores = torch.full((4, 1, 4, 4), 0.5)
    assert lsgan_loss(scores, real=True).item() == pytest.approx(0.25)
    assert lsgan_loss(torch.ones(3), real=True).item() == 0
    assert lsgan_loss(torch.ones(3), real=False).item() == 1


def test_instance_norm_keeps_channels_last_and_equals_torchs():
    from hydramix_core.models import InstanceNorm

    torch.manual_seed(0)
    x = torch.randn(4, 16, 8, 8) * 3 + 1
    norm, reference = InstanceNorm(16), torch.nn.InstanceNorm2d(16)
    assert torch.equal(norm(x), reference(x))  # NCHW: torch's own kernel, bit for bit
    wide = x.contiguous(memory_format=torch.channels_last)
    out = norm(wide)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert torch.allclose(out, reference(x), atol=1e-5)
    half = norm(wide.bfloat16())
    assert half.dtype == torch.bfloat16 and half.is_contiguous(memory_format=torch.channels_last)
    assert (half.float() - reference(x)).abs().max() < 0.05  # bf16 rounding of the output


def test_a_channels_last_generator_stays_channels_last():
    generator = Generator(ngf=8, working_size=32).eval()
    layouts = []
    for module in generator.modules():
        if isinstance(module, torch.nn.InstanceNorm2d):
            module.register_forward_hook(lambda m, i, o: layouts.append(o.is_contiguous(memory_format=torch.channels_last)))
    images, masks = torch.rand(2, 3, 3, 32, 32) * 2 - 1, torch.full((2, 3, 8, 8), 1 / 3)
    expected = generator(images, masks)
    layouts.clear()
    wide = generator.to(memory_format=torch.channels_last)
    out = wide(images, masks)
    assert len(layouts) == 13 and all(layouts)
    assert torch.allclose(out, expected, atol=1e-4)
