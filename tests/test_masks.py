import pytest
import torch

from hydramix_core.masks import (chimeramix_segment_masks, felzenszwalb_segments, make_masks, random_crop_flip,
                                 soften)


def _segs(batch, n_mix, size=64, seed=0):
    """Random blocky label maps with 16 segments (4x4 blocks of 16 px, ids shuffled)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randperm(16, generator=g) for _ in range(batch * n_mix)]).view(batch * n_mix, 1, 4, 4)
    maps = torch.nn.functional.interpolate(ids.float(), size=(size, size), mode="nearest").long()
    return maps.view(batch, n_mix, size, size)


@pytest.mark.parametrize("kind,n_mix", [("hydramix", 2), ("hydramix", 3), ("hydramix", 4), ("grid", 3),
                                        ("chimeramix_seg", 2), ("chimeramix_grid", 2)])
def test_masks_sum_to_one_and_are_binary(kind, n_mix):
    masks = make_masks(kind, segs=_segs(8, n_mix), batch=8, n_mix=n_mix, out_size=16, generator=torch.Generator().manual_seed(1))
    assert masks.shape == (8, n_mix, 16, 16)
    assert torch.allclose(masks.sum(1), torch.ones(8, 16, 16))
    assert set(masks.unique().tolist()) <= {0.0, 1.0}


def test_soft_edges_keep_partition_of_unity():
    hard = make_masks("hydramix", segs=_segs(4, 3), out_size=16, generator=torch.Generator().manual_seed(0))
    soft = soften(hard, 1.0)
    assert torch.allclose(soft.sum(1), torch.ones(4, 16, 16), atol=1e-6)
    assert soft.min() >= 0 and soft.max() <= 1
    assert ((soft > 0.01) & (soft < 0.99)).any()  # edges really are soft


@pytest.mark.parametrize("n_mix", [2, 3, 4])
def test_every_image_shows_with_equal_expected_share(n_mix):
    masks = make_masks("hydramix", segs=_segs(400, n_mix), out_size=16, generator=torch.Generator().manual_seed(2))
    share = masks.mean((2, 3))  # [B, N]
    assert (share.mean(0) - 1 / n_mix).abs().max() < 0.05
    assert ((share > 0).float().mean(0) > 0.6).all()  # each image present in most mixes


def test_chimeramix_segment_rule_is_a_contiguous_id_range_of_image_b():
    segs = _segs(200, 2)
    masks = chimeramix_segment_masks(segs, torch.Generator().manual_seed(3))
    for b in range(200):
        shown_ids = segs[b, 1][masks[b, 0] == 1].unique()
        assert len(shown_ids) >= 1
        assert shown_ids.tolist() == list(range(int(shown_ids.min()), int(shown_ids.max()) + 1))
        assert int(shown_ids.max()) <= 14  # upper bound u <= S - 1, ids [l, u)


def test_chimeramix_grid_is_a_shifted_4x4_bernoulli_grid():
    masks = make_masks("chimeramix_grid", batch=500, n_mix=2, out_size=16, generator=torch.Generator().manual_seed(4))
    first = masks[:, 0]
    assert abs(first.mean().item() - 0.5) < 0.03
    changes_per_row = (first[:, :, 1:] != first[:, :, :-1]).sum(-1)
    assert changes_per_row.max() <= 4  # at most 5 cells visible across 16 px
    with pytest.raises(ValueError, match="2 images"):
        make_masks("chimeramix_grid", batch=2, n_mix=3, out_size=16, generator=torch.Generator())


def test_crop_flip_moves_labels_with_their_image():
    segs = _segs(6, 1, size=32)[:, 0:1]  # [B, 1, H, W]
    images = torch.cat([segs.float(), torch.rand(6, 2, 32, 32)], 1)
    out_images, out_segs = random_crop_flip([images, segs], pad=4, generator=torch.Generator().manual_seed(5))
    assert out_segs.dtype == segs.dtype and out_images.shape == images.shape
    assert torch.equal(out_images[:, 0].long(), out_segs[:, 0])
    assert not torch.equal(out_segs, segs)


@pytest.mark.parametrize("kind", ["hydramix", "grid", "chimeramix_seg", "chimeramix_grid"])
def test_masks_without_a_generator_use_the_global_one(kind):
    torch.manual_seed(7)
    first = make_masks(kind, segs=_segs(4, 2), batch=4, n_mix=2, out_size=16, generator=None)
    torch.manual_seed(7)
    assert torch.equal(first, make_masks(kind, segs=_segs(4, 2), batch=4, n_mix=2, out_size=16, generator=None))
    assert torch.allclose(first.sum(1), torch.ones(4, 16, 16))


def test_mask_errors():
    with pytest.raises(ValueError, match="Unknown mask kind"):
        make_masks("stripes", batch=1, n_mix=2, out_size=4, generator=torch.Generator())
    with pytest.raises(ValueError, match="needs segmentations"):
        make_masks("hydramix", out_size=4, generator=torch.Generator())


def test_felzenszwalb_at_working_size(cifar10_train):
    segs = felzenszwalb_segments(cifar10_train.images[:4], size=64, scale=60, min_size=60)
    assert segs.shape == (4, 64, 64)
    counts = [len(s.unique()) for s in segs]
    assert all(2 <= c <= 60 for c in counts)
