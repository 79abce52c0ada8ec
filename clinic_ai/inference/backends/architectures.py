"""Small, deliberately different CNNs for 28x28 grey images (diversity is what an ensemble is for).

Every builder returns a functional ``keras.Model`` whose output is one LOGIT per output unit (no
sigmoid/softmax layer): Grad-CAM needs the logit, and the ensemble applies the activation after
averaging. BatchNorm uses momentum 0.9 because with ~60 steps per epoch Keras's default 0.99 leaves
the moving statistics wrong at prediction time. No Lambda layers: they cannot be loaded safely.

``resnet`` wraps its convolutions in a nested base model (``base = keras.Model(...)`` called inside
the outer model), the shape of every transfer-learning model and the case naive Grad-CAM gets wrong.
"""

from __future__ import annotations

import keras
from keras import layers

BN_MOMENTUM = 0.9


def _conv_bn(x, filters: int, *, kernel: int = 3, strides: int = 1, name: str):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _head(x, outputs: int, *, dropout: float, name: str):
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(outputs, name=f"{name}_logits")(x)


def vgg(input_shape=(28, 28, 1), outputs: int = 1, width: int = 24, name: str = "vgg") -> keras.Model:
    """Plain stacks of 3x3 convolutions and max-pooling: 28 -> 14 -> 7."""
    inp = keras.Input(input_shape, name="image")
    x = _conv_bn(inp, width, name="b1c1")
    x = _conv_bn(x, width, name="b1c2")
    x = layers.MaxPooling2D(name="b1_pool")(x)
    x = _conv_bn(x, width * 2, name="b2c1")
    x = _conv_bn(x, width * 2, name="b2c2")
    x = layers.MaxPooling2D(name="b2_pool")(x)
    x = _conv_bn(x, width * 4, name="b3c1")
    return keras.Model(inp, _head(x, outputs, dropout=0.3, name="head"), name=name)


def _residual(x, filters: int, *, strides: int, name: str):
    shortcut = x
    y = _conv_bn(x, filters, strides=strides, name=f"{name}a")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}b_conv")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}b_bn")(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resnet(input_shape=(28, 28, 1), outputs: int = 1, width: int = 16, name: str = "resnet") -> keras.Model:
    """A small ResNet whose convolutions sit in a nested base model: 28 -> 14 -> 7."""
    base_in = keras.Input(input_shape, name="base_image")
    x = _conv_bn(base_in, width, name="stem")
    x = _residual(x, width, strides=1, name="s1")
    x = _residual(x, width * 2, strides=2, name="s2")
    x = _residual(x, width * 4, strides=2, name="s3")
    base = keras.Model(base_in, x, name=f"{name}_base")

    inp = keras.Input(input_shape, name="image")
    return keras.Model(inp, _head(base(inp), outputs, dropout=0.3, name="head"), name=name)


def _separable(x, filters: int, *, strides: int, name: str):
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.Activation("relu6", name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_pw_bn")(x)
    return layers.Activation("relu6", name=f"{name}_pw_relu")(x)


def mobilenet(input_shape=(28, 28, 1), outputs: int = 1, width: int = 32, name: str = "mobilenet") -> keras.Model:
    """Depthwise-separable blocks (MobileNet v1 style): 28 -> 14 -> 7."""
    inp = keras.Input(input_shape, name="image")
    x = _conv_bn(inp, width, name="stem")
    x = _separable(x, width * 2, strides=1, name="ds1")
    x = _separable(x, width * 2, strides=2, name="ds2")
    x = _separable(x, width * 4, strides=1, name="ds3")
    x = _separable(x, width * 4, strides=2, name="ds4")
    x = _separable(x, width * 4, strides=1, name="ds5")
    return keras.Model(inp, _head(x, outputs, dropout=0.2, name="head"), name=name)


def wide(input_shape=(28, 28, 1), outputs: int = 1, width: int = 64, name: str = "wide") -> keras.Model:
    """Wide and shallow: two large-kernel convolutions, few layers: 28 -> 14 -> 7."""
    inp = keras.Input(input_shape, name="image")
    x = _conv_bn(inp, width, kernel=5, name="c1")
    x = layers.MaxPooling2D(name="c1_pool")(x)
    x = _conv_bn(x, width * 2, kernel=3, name="c2")
    x = layers.MaxPooling2D(name="c2_pool")(x)
    return keras.Model(inp, _head(x, outputs, dropout=0.4, name="head"), name=name)


ARCHITECTURES = {"vgg": vgg, "resnet": resnet, "mobilenet": mobilenet, "wide": wide}
