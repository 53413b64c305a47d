"""HydraMix: multi-image feature mixing for small-data image classification.

The names most uses need (the library map in README.md lists every module; the trainer is
``hydramix_core.train_generator.train_generator``, not exported here, where its name would hide
its module):

    from hydramix_core import HydraMixAugment, fit_generator
    fit_generator("my_images", "runs/gen", steps=2000)                      # or `hydramix fit-generator`
    augment = HydraMixAugment.from_generator("runs/gen", images, labels, p_gen=0.5)
    images, labels = augment(images, labels)                                # in your own training loop
"""

from .runtime import __version__, apply_portable_cpu_numerics, portable_cpu_requested

if portable_cpu_requested():  # a process started with runtime.PORTABLE_CPU_ENV (profile nbcheck, its tests)
    apply_portable_cpu_numerics()

from .api import augment_folder, fit_generator, train_classifier_on_folder  # noqa: E402
from .augment import HydraMixAugment  # noqa: E402
from .data import load_dataset, load_image_folder  # noqa: E402
from .engine import ClassifierConfig, train_classifier  # noqa: E402
from .generator_files import GeneratorConfig, load_generator  # noqa: E402
from .splits import create_split  # noqa: E402

__all__ = ["ClassifierConfig", "GeneratorConfig", "HydraMixAugment", "__version__", "augment_folder", "create_split",
           "fit_generator", "load_dataset", "load_generator", "load_image_folder", "train_classifier",
           "train_classifier_on_folder"]
