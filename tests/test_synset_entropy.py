import json
import math

import pytest
import torch

from hydramix_core.synset_entropy import (SURROGATE_LABEL, ClipScorer, PipelineSamplers, ScorerUnavailableError,
                                          SurrogateScorer, Vocabulary, entropy_from_predictions, histogram_entropy,
                                          imagenet_vocabulary, measure)


def test_entropy_math():
    assert histogram_entropy(torch.full((50,), 7), 1000) == 0.0
    assert histogram_entropy(torch.arange(8).repeat(5), 1000) == pytest.approx(math.log(8))
    assert histogram_entropy(torch.tensor([0, 0, 1, 1]), 2) == pytest.approx(math.log(2))
    vocabulary = Vocabulary(("a", "b", "c"), ("apple", "bee", "cat"))
    result = entropy_from_predictions([torch.tensor([0, 0, 0, 0]), torch.tensor([0, 1, 2, 0])], vocabulary, "test")
    assert result.per_class_entropy[0] == 0
    assert result.mean_entropy == pytest.approx(result.per_class_entropy[1] / 2)
    assert result.effective_synsets == pytest.approx(math.exp(result.mean_entropy))
    assert result.top_synsets[1][0] == ("apple", 2)


def test_vocabulary_is_the_imagenet_synsets():
    vocabulary = imagenet_vocabulary()
    assert len(vocabulary) == 1000 and vocabulary.wnids[0] == "n01440764" and len(set(vocabulary.wnids)) == 1000
    assert vocabulary.fingerprint() != vocabulary.subset(999).fingerprint()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised small open_clip model saved as a local checkpoint (nothing downloaded)."""
    import open_clip

    folder = tmp_path_factory.mktemp("clip")
    config = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (folder / "hydramix-tiny-test.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / "hydramix-tiny-test.json")
    torch.manual_seed(0)
    model = open_clip.create_model("hydramix-tiny-test", pretrained=None)
    torch.save(model.state_dict(), folder / "tiny.pt")
    return folder / "tiny.pt"


def test_clip_path_end_to_end_with_text_cache(tiny_clip, tmp_path, monkeypatch):
    vocabulary = imagenet_vocabulary().subset(12)
    templates = (lambda c: f"a photo of a {c}.", lambda c: f"a drawing of a {c}.")
    scorer = ClipScorer("hydramix-tiny-test", checkpoint=str(tiny_clip), vocabulary=vocabulary, templates=templates,
                        cache_dir=tmp_path, device="cpu")
    assert scorer.text_features.shape == (12, 32) and scorer.text_cache.exists()
    predictions = scorer.predict(torch.rand(5, 3, 40, 48))  # any size: resized and centre-cropped to 32
    assert predictions.shape == (5,) and predictions.max() < 12

    calls = []
    original = type(scorer.model).encode_text
    monkeypatch.setattr(type(scorer.model), "encode_text", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    again = ClipScorer("hydramix-tiny-test", checkpoint=str(tiny_clip), vocabulary=vocabulary, templates=templates,
                       cache_dir=tmp_path, device="cpu")
    assert not calls and torch.equal(again.text_features, scorer.text_features)  # served from the cache
    other = ClipScorer("hydramix-tiny-test", checkpoint=str(tiny_clip), vocabulary=imagenet_vocabulary().subset(13),
                       templates=templates, cache_dir=tmp_path, device="cpu")
    assert len(calls) == 13 and other.text_cache != scorer.text_cache  # new vocabulary, new cache entry

    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    samplers = PipelineSamplers(images, torch.tensor([0, 0, 0, 1, 1, 1]))
    result = measure(scorer, samplers.original, num_classes=2, images_per_class=8, progress=False)
    assert len(result.per_class_entropy) == 2 and 0 <= result.mean_entropy <= math.log(8)
    assert result.label == "CLIP synset entropy"


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ScorerUnavailableError, match="does not exist"):
        ClipScorer("ViT-B-32", checkpoint=str(tmp_path / "missing.pt"))


def test_surrogate_is_labelled_and_classifies(cifar10_train):
    scorer = SurrogateScorer(device="cpu")
    assert scorer.label == SURROGATE_LABEL and "CLIP" not in scorer.label
    predictions = scorer.predict(cifar10_train.images[:4].float() / 255)
    assert predictions.shape == (4,) and predictions.max() < 1000


def test_mixup_sampler_stays_in_range():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    samplers = PipelineSamplers(images, torch.tensor([0, 0, 1, 1]))
    out = samplers.mixup(1, 10, torch.Generator().manual_seed(0))
    assert out.shape == (10, 3, 32, 32) and out.min() >= 0 and out.max() <= 1
