"""Datasets by name, as uint8 tensors.

    from hydramix_core.data import load_dataset
    train = load_dataset("cifar10", train=True)   # ImageSet: images [N,3,32,32] uint8
    test = load_dataset("cifar10", train=False)
    own = load_dataset("/path/to/folder")          # root/{train,test}/<class>/*.png|jpg

Names: cifar10, cifar100, cifair10, cifair100, stl10, or a path to an image-folder tree.
Data root: ``$HYDRAMIX_DATA``, else ``~/.cache/hydramix/data`` (``$XDG_CACHE_HOME`` honoured).
A dataset already on disk is used without network. Otherwise its official archive is
downloaded (torchvision's utilities, md5 checked) when ``download=True`` and the network
allows; if not, the error says what to fetch and where to put it.

``cifar10`` is also satisfied by an image-folder tree at ``<root>/cifar10-jpeg/`` or
``<root>/cifar10/`` (e.g. a JPEG copy); its pixels then differ from the official
archive's, which the data fingerprint records.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision.datasets as tvd
from torchvision.datasets.utils import check_integrity, download_url, extract_archive
from torchvision.io import ImageReadMode, decode_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or malformed; the message says what to do."""


class DatasetNotFoundError(DatasetError):
    pass


class CorruptArchiveError(DatasetError):
    pass


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets live in: ``root``, else $HYDRAMIX_DATA, else a user cache folder."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("HYDRAMIX_DATA"):
        return Path(os.environ["HYDRAMIX_DATA"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "hydramix" / "data"


@dataclass(eq=False)
class ImageSet:
    """A labelled image set held in memory.

    images: uint8 [N, 3, H, W]; labels: int64 [N]; classes: names indexed by label.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str  # "train" or "test"
    source: str  # where the pixels came from, e.g. the folder or archive
    _fingerprint: str | None = field(default=None, repr=False)
    files: list[str] | None = field(default=None, repr=False)  # image folders: the file of each image
    resized: list[str] = field(default_factory=list, repr=False)  # image folders: files resized on loading
    skipped: dict[str, str] = field(default_factory=dict, repr=False)  # image folders: unreadable file -> why

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise DatasetError(f"{self.name}: images must be uint8 [N,3,H,W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (len(self.images),):
            raise DatasetError(f"{self.name}: {len(self.labels)} labels for {len(self.images)} images")
        self.labels = self.labels.to(torch.int64)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """sha256 over pixels, labels and class names (16 hex digits): identifies the exact data."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(self.images.contiguous().numpy().tobytes())
            digest.update(self.labels.numpy().tobytes())
            digest.update("\n".join(self.classes).encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def subset(self, indices) -> "ImageSet":
        indices = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return ImageSet(self.images[indices], self.labels[indices], list(self.classes),
                        self.name, self.split, self.source)


@dataclass(frozen=True)
class Archive:
    """An official download: where it comes from and what it must hash to."""

    url: str
    filename: str
    md5: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    image_size: int
    num_classes: int
    sources: tuple[type, ...]  # torchvision dataset classes whose archives make up the dataset
    folder_names: tuple[str, ...] = ()  # image-folder trees under the root that also satisfy it

    @property
    def archives(self) -> tuple[Archive, ...]:
        return tuple(_archive(source) for source in self.sources)


class _CiFAIR10Test(tvd.CIFAR10):
    """ciFAIR-10's purged test batch; class names come from CIFAR-10's own metadata."""

    base_folder = "ciFAIR-10"
    url = "https://github.com/cvjena/cifair/releases/download/v1.0/ciFAIR-10.zip"
    filename = "ciFAIR-10.zip"
    tgz_md5 = "ca08fd390f0839693d3fc45c4e49585f"
    train_list: list = []
    test_list = [["test_batch", "01290e6b622a1977a000eff13650aca2"]]

    cifar_base_folder = tvd.CIFAR10.base_folder

    def _load_meta(self) -> None:
        owner = _Probe(self.root, self.cifar_base_folder, self)
        owner.meta = self.meta
        tvd.CIFAR10._load_meta(owner)
        self.classes = owner.classes


class _CiFAIR100Test(_CiFAIR10Test):
    base_folder = "ciFAIR-100"
    url = "https://github.com/cvjena/cifair/releases/download/v1.0/ciFAIR-100.zip"
    filename = "ciFAIR-100.zip"
    tgz_md5 = "ddc236ab4b12eeb8b20b952614861a33"
    test_list = [["test", "8130dae8d6fc6a436437f0ebdb801df1"]]
    cifar_base_folder = tvd.CIFAR100.base_folder
    meta = tvd.CIFAR100.meta


def _archive(dataset_cls) -> Archive:
    return Archive(dataset_cls.url, dataset_cls.filename, dataset_cls.tgz_md5)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec("cifar10", "CIFAR-10: 10 classes, 50,000 train / 10,000 test, 32x32 (Krizhevsky 2009)",
                    32, 10, (tvd.CIFAR10,), ("cifar10-jpeg", "cifar10")),
        DatasetSpec("cifar100", "CIFAR-100: 100 classes, 50,000 train / 10,000 test, 32x32",
                    32, 100, (tvd.CIFAR100,)),
        DatasetSpec("cifair10", "ciFAIR-10: CIFAR-10 train + test set purged of near-duplicates (Barz & Denzler 2020)",
                    32, 10, (tvd.CIFAR10, _CiFAIR10Test)),
        DatasetSpec("cifair100", "ciFAIR-100: CIFAR-100 train + purged test set (Barz & Denzler 2020)",
                    32, 100, (tvd.CIFAR100, _CiFAIR100Test)),
        DatasetSpec("stl10", "STL-10: 10 classes, 5,000 labelled train / 8,000 test, 96x96 (unlabelled split unused)",
                    96, 10, (tvd.STL10,)),
    ]
}


def load_dataset(name: str | os.PathLike, *, train: bool = True, root: str | os.PathLike | None = None,
                 download: bool = True) -> ImageSet:
    """Load a registered dataset or an image-folder tree as an :class:`ImageSet`.

    ``name`` is a registry name (see ``DATASETS``) or a folder holding ``train/`` and
    ``test/`` with one sub-folder of images per class.
    """
    split = "train" if train else "test"
    if str(name) not in DATASETS:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            known = ", ".join(DATASETS)
            raise DatasetError(f"Unknown dataset {str(name)!r}: use one of {known}, or a folder path.")
        return load_image_folder(folder / split, name=folder.name, split=split)

    spec, root = DATASETS[str(name)], data_root(root)
    if spec.name == "cifar10" and not _cifar_ready(tvd.CIFAR10, root):
        for folder_name in spec.folder_names:
            if (root / folder_name / split).is_dir():
                return load_image_folder(root / folder_name / split, name=spec.name, split=split)

    if spec.name in ("cifar10", "cifair10"):
        return _load_cifar(spec, tvd.CIFAR10, _CiFAIR10Test, root, train, download)
    if spec.name in ("cifar100", "cifair100"):
        return _load_cifar(spec, tvd.CIFAR100, _CiFAIR100Test, root, train, download)
    return _load_stl10(spec, root, train, download)


def _cifar_ready(dataset_cls, root: Path) -> bool:
    return dataset_cls._check_integrity(_Probe(root, dataset_cls.base_folder, dataset_cls))


class _Probe:
    """Stand-in ``self`` for torchvision's ``_check_integrity`` without loading the data."""

    def __init__(self, root, base_folder, dataset_cls):
        self.root, self.base_folder = str(root), base_folder
        self.train_list, self.test_list = dataset_cls.train_list, dataset_cls.test_list


def _load_cifar(spec: DatasetSpec, cifar_cls, cifair_cls, root: Path, train: bool, download: bool) -> ImageSet:
    # ciFAIR = the CIFAR archive (training set, class names) + a purged test archive.
    ensure_extracted(spec, _archive(cifar_cls), root, lambda: _cifar_ready(cifar_cls, root), download)
    dataset_cls = cifar_cls
    if spec.name.startswith("cifair") and not train:
        dataset_cls = cifair_cls
        ensure_extracted(spec, _archive(cifair_cls), root, lambda: _cifar_ready(cifair_cls, root), download)
    dataset = dataset_cls(str(root), train=train, download=False)
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
    return ImageSet(images, torch.tensor(dataset.targets), list(dataset.classes), spec.name,
                    "train" if train else "test", str(root / dataset_cls.base_folder))


def _load_stl10(spec: DatasetSpec, root: Path, train: bool, download: bool) -> ImageSet:
    probe = _Probe(root, tvd.STL10.base_folder, tvd.STL10)
    ensure_extracted(spec, _archive(tvd.STL10), root, lambda: tvd.STL10._check_integrity(probe), download)
    dataset = tvd.STL10(str(root), split="train" if train else "test", download=False)
    return ImageSet(torch.from_numpy(np.ascontiguousarray(dataset.data)), torch.from_numpy(dataset.labels.astype(np.int64)),
                    list(dataset.classes), spec.name, "train" if train else "test", str(root / tvd.STL10.base_folder))


DOWNLOAD_TIMEOUT = 60  # seconds a download may wait for the next bytes (HYDRAMIX_DOWNLOAD_TIMEOUT overrides)


def ensure_extracted(spec: DatasetSpec, archive: Archive, root: Path, is_ready, download: bool) -> None:
    """Make ``is_ready()`` true: extract the archive found in ``root`` or download it first.

    A corrupt archive is renamed to ``*.corrupt`` (so it never looks valid again) and
    extraction goes through a temporary folder, so a failure never leaves half a dataset.
    """
    if is_ready():
        return
    path = root / archive.filename
    if not path.exists():
        if not download:
            raise DatasetNotFoundError(_missing_message(spec, archive, root, "download=False"))
        timeout = float(os.environ.get("HYDRAMIX_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT))
        print(f"downloading {spec.name} from {archive.url} to {path} (a silent network fails after {timeout:g} s)",
              file=sys.stderr)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)  # torchvision's download_url sets none: a stalled proxy would hang for ever
        try:
            download_url(archive.url, str(root), archive.filename, archive.md5)
        except Exception as error:  # network down or silent, HTTP error, bad checksum
            if path.exists():
                path.replace(path.with_name(path.name + ".corrupt"))
            raise DatasetNotFoundError(_missing_message(spec, archive, root, f"download failed: {error!r}")) from error
        finally:
            socket.setdefaulttimeout(previous)
    if not check_integrity(str(path), archive.md5):
        bad = path.with_name(path.name + ".corrupt")
        path.replace(bad)
        raise CorruptArchiveError(
            f"{spec.name}: {path} does not match its md5 {archive.md5} (truncated or wrong file); "
            f"moved it to {bad}. Fetch it again from {archive.url} and place it at {path}.")
    _extract_atomically(path, root)
    if not is_ready():
        raise CorruptArchiveError(f"{spec.name}: {path} extracted but its files fail their checksums; "
                                  f"delete the extracted folder and fetch {archive.url} again.")


def _extract_atomically(path: Path, root: Path) -> None:
    with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp:
        try:
            extract_archive(str(path), tmp)
        except Exception as error:
            raise CorruptArchiveError(f"Could not extract {path}: {error}. Delete it and fetch it again.") from error
        for entry in Path(tmp).iterdir():
            target = root / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)


def _missing_message(spec: DatasetSpec, archive: Archive, root: Path, reason: str) -> str:
    alternatives = "".join(f" or an image-folder tree at {root / name}/{{train,test}}/<class>/" for name in spec.folder_names)
    return (f"Dataset {spec.name!r} is not in {root} ({reason}). Download {archive.url} "
            f"(md5 {archive.md5}) and place it at {root / archive.filename}{alternatives}; "
            f"set HYDRAMIX_DATA to use another data folder.")


def load_image_folder(folder: str | os.PathLike, *, name: str | None = None, split: str = "train",
                      image_size: int | None = None, skip_unreadable: bool = False) -> ImageSet:
    """Read ``folder/<class>/*.{png,jpg,...}`` into an ImageSet (classes in sorted order).

    Grayscale and palette images become RGB. Without ``image_size`` all images must share
    one size; with it, each image is resized (shorter side to ``image_size``, centre crop)
    and ``ImageSet.resized`` lists the files whose size changed. Files with other
    extensions are ignored; an unreadable image is an error, or skipped (and listed in
    ``ImageSet.skipped``) with ``skip_unreadable``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(f"No image folder at {folder}: expected {folder}/<class>/*.png|jpg.")
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{folder} has no class sub-folders: expected {folder}/<class>/*.png|jpg.")
    images, labels, files, resized, skipped, first_size = [], [], [], [], {}, None
    for label, class_dir in enumerate(class_dirs):
        candidates = sorted(f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        count = 0
        for file in candidates:
            try:
                image = _read_image(file)
            except DatasetError as error:
                if not skip_unreadable:
                    raise
                skipped[str(file)] = str(error)
                continue
            if image_size is not None:
                if image.shape[1:] != (image_size, image_size):
                    resized.append(str(file))
                    image = _resize_center_crop(image, image_size)
            elif first_size is None:
                first_size = (file, image.shape[1:])
            elif image.shape[1:] != first_size[1]:
                raise DatasetError(
                    f"Images differ in size: {file} is {tuple(image.shape[1:])}, {first_size[0]} is "
                    f"{tuple(first_size[1])}. Resize them to one size first (or pass image_size).")
            images.append(image)
            labels.append(label)
            files.append(str(file))
            count += 1
        if not count:
            raise DatasetError(f"Class folder {class_dir} holds no readable images ({', '.join(IMAGE_EXTENSIONS)}).")
    data = ImageSet(torch.stack(images), torch.tensor(labels), [d.name for d in class_dirs],
                    name or folder.name, split, str(folder))
    data.files, data.resized, data.skipped = files, resized, skipped
    return data


def _resize_center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    import torchvision.transforms.v2.functional as TF

    return TF.center_crop(TF.resize(image, size, antialias=True), [size, size])


def _read_image(file: Path) -> torch.Tensor:
    """[3, H, W] uint8 RGB from any pixel format: grayscale, palette, alpha (dropped), CMYK, 16-bit;
    the first frame of an animated image (as Pillow reads one)."""
    try:
        with warnings.catch_warnings():  # torchvision 0.29 flags its decoders as deprecated; they still work
            warnings.simplefilter("ignore", DeprecationWarning)
            image = decode_image(str(file), mode=ImageReadMode.RGB)
    except Exception:
        image = _read_image_pil(file)  # torchvision decodes PNG/JPEG/WebP/GIF only; Pillow reads BMP, TIFF, ...
    if image.ndim == 4:  # an animated GIF/WebP: its frames, of which the first is the image
        image = image[0]
    if image.dtype == torch.uint16:  # 16-bit PNG
        image = (image.to(torch.int32) // 257).to(torch.uint8)
    return image


def _read_image_pil(file: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image.load()
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16/32-bit integer or float pixels
                values = np.asarray(image, dtype=np.float64)
                if image.mode == "F" and values.max(initial=0) <= 1.0:
                    values = values * 255
                elif values.max(initial=0) > 255:
                    values = values / 257
                if values.min(initial=0) < 0 or values.max(initial=0) > 255:
                    raise DatasetError(f"Cannot read image {file}: its {image.mode} pixels range over "
                                       f"[{values.min():g}, {values.max():g}]; save it as 8-bit PNG or JPEG.")
                array = np.repeat(values.round().astype(np.uint8)[..., None], 3, axis=2)
            else:
                array = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DatasetError(f"Cannot read image {file}: {error}") from error
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def install_image_folder_archive(tarball: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Extract an image-folder archive (e.g. ``cifar10-jpeg.tar.gz``) into the data root once.

    If ``<tarball>.sha256`` exists, the archive must match it. Returns the extracted folder.
    """
    tarball, root = Path(tarball), data_root(root)
    if not tarball.is_file():
        raise DatasetNotFoundError(f"No archive at {tarball}.")
    folder_name = tarball.name.split(".")[0]
    target = root / folder_name
    if (target / "train").is_dir() and (target / "test").is_dir():
        return target
    checksum_file = tarball.with_name(tarball.name + ".sha256")
    if checksum_file.is_file():
        expected = checksum_file.read_text().split()[0]
        digest = hashlib.sha256()
        with open(tarball, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise CorruptArchiveError(f"{tarball} has sha256 {digest.hexdigest()}, expected {expected} "
                                      f"(from {checksum_file}): the copy is damaged.")
    root.mkdir(parents=True, exist_ok=True)
    _extract_atomically(tarball, root)
    if not (target / "train").is_dir():
        raise DatasetError(f"{tarball} did not contain {folder_name}/train/.")
    return target


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Prepare a dataset in the data root.")
    parser.add_argument("--install-archive", help="extract an image-folder .tar.gz (checked against its .sha256)")
    parser.add_argument("--dataset", help="load (and if needed download) a registered dataset")
    args = parser.parse_args(argv)
    if args.install_archive:
        print(install_image_folder_archive(args.install_archive))
    if args.dataset:
        for train in (True, False):
            data = load_dataset(args.dataset, train=train)
            print(f"{data.name} {data.split}: {len(data)} images {tuple(data.images.shape[1:])}, "
                  f"{data.num_classes} classes, from {data.source}")


if __name__ == "__main__":
    _main()
