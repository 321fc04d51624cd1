"""Feature inversion ("natural pre-images", paper Fig. 9; REFERENCE §3.2 'Feature inversion').

The observation y is the image x0 whose features are inverted, at the size the classifier
is given; the fit looks for an image whose activations at one named layer of a pretrained
classifier match x0's: the data term is ‖Φ(pre(crop(x))) − Φ(pre(y))‖² where Φ is the
layer's activations (before its ReLU for a conv or fc layer, as the original's hooks see
them), pre the classifier's preprocessing and crop the top-left window the classifier sees
(`ClassifierWindow`: the notebook fits a 256x256 output and crops 224x224).

`loss='mse'` is the original's: `nn.MSELoss` on the raw activations, the mean over their
elements (`utils/matcher.py`). `loss='relative'` divides the summed squared difference by
‖Φ(pre(y))‖² (Mahendran & Vedaldi's normalisation), which makes one value comparable across
layers and images: 1 is what an all-zero Φ would score.

Φ(pre(y)) is computed inside the data term from the observation it is given, not stored in
the operator, so one operator serves several observations (`ensemble.fit_images`). That
costs a forward pass of the classifier up to the layer on y at every step (no backward).
Measured on the 2-core CPU (loaded by other jobs) with the notebook's 6-level skip net at
256x256 and EfficientNet-Lite0 at 224x224, `fit.fit` steps 4-13: inverting `fc` took 2.10 s
per step against 1.52 s for activation maximisation of an `fc` logit, the same net and
classifier without that extra forward pass; inverting `blocks.10` took 1.56 s.

`scores` reports, for an output x, the relative feature distance (`feature_distance`, the
'relative' loss whatever `loss` is, so runs of different losses and layers compare), the
original's MSE (`feature_mse`) and the PSNR of the classifier's window of x against the
image (`psnr_original`).

`simulate` returns the image itself (cut to the classifier's input size): there is nothing
to degrade. The TV-prior baseline is `Regularized(FeatureInversion(...), tv_weight)` fitted
with `models.PixelImage`.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dip_jax import metrics
from dip_jax.classifiers import Classifier
from dip_jax.operators.base import Operator
from dip_jax.operators.classifier_window import ClassifierWindow

LOSSES = ("mse", "relative")


@flax.struct.dataclass
class FeatureInversion(ClassifierWindow, Operator):
    """Match `classifier`'s activations at `layer` to the observation's."""

    classifier: Classifier
    layer: str = flax.struct.field(pytree_node=False)
    loss: str = flax.struct.field(pytree_node=False, default="mse")
    image_size: tuple | None = flax.struct.field(pytree_node=False, default=None)
    output_size: tuple | None = flax.struct.field(pytree_node=False, default=None)

    def __post_init__(self):
        # Static fields only: pytrees are rebuilt through __init__ with placeholder leaves.
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; expected one of {LOSSES}")
        self.classifier.check_layer(self.layer)
        self.check_sizes()

    def features(self, image: jax.Array) -> jax.Array:
        """Φ(pre(image)) for an image of the classifier's input size."""
        return self.classifier.activations(image, self.layer)

    def data_term(self, x, y):
        phi = self.features(self.forward(x))
        target = jax.lax.stop_gradient(self.features(y))
        squared = jnp.sum(jnp.square(phi - target))
        if self.loss == "mse":
            return squared / target.size
        return squared / jnp.sum(jnp.square(target))

    def scores(self, x, y):
        window = self.forward(x)
        phi, target = self.features(window), self.features(y)
        squared = jnp.sum(jnp.square(phi - target))
        return {"feature_distance": squared / jnp.sum(jnp.square(target)), "feature_mse": squared / target.size,
                "psnr_original": metrics.psnr(window, y)}

    def simulate(self, clean, key):
        """The image itself is the observation; no randomness."""
        del key
        return self.forward(clean)
