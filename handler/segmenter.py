"""U²-NetP salient-object segmentation with ONNX Runtime: image in, mask at source size out.

The recipe follows U-2-Net's ``u2net_test.py``: 320x320 input, divide by the maximum,
ImageNet mean/std, output 0 (the fused map) min-max normalised, bilinear back to the
source size. One change: the downscale to 320x320 is antialiased (box reduce, then
LANCZOS), because the recipe was written for ~400x300 benchmark images and a point-sampled
downscale of a 12 MP photo aliases badly enough to flip the mask.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from .parallel import SERIAL, StripPool

INPUT_SIZE = 320
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MODEL_NAME = "u2netp"
# ONNX Runtime's idle pool threads spin before they sleep. Under a CPU quota (Lambda below
# 10 GB, a container's cpu.max) spinning burns the time the other thread needs: `make cost`
# measures both, and spinning off was never slower there (see README "Cost per 1,000 images").
SPINNING = False


def _resized(image: Image.Image, strips: StripPool) -> np.ndarray:
    """The image at 320x320 as a uint8 array: Pillow's ``resize(..., LANCZOS, reducing_gap=2.0)``
    written out, so that its LANCZOS step runs in two halves of output rows on two cores.

    Pillow first box-reduces by a whole factor while the image stays at least twice the target,
    then resizes what is left of the box. Each half is resized from the whole reduced image with
    the box of its rows, and reads across the seam as one resize does. The halves are one
    resize's rows unless Pillow runs its two passes in the other order for a half than for the
    whole (Pillow 13 runs the vertical one first when the height shrinks much more than the
    width); then they differ by a few levels (9 of 83 photos tried: up to 5, mean at most 0.2).
    Either way they are the same on any pool. The resize was a fifth of a 512 px photo's time
    besides inference; in halves it takes a third less.
    """
    if image.height < INPUT_SIZE:  # enlarged from boxes, rows came out up to 50 levels off one resize's
        return np.asarray(image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS, reducing_gap=2.0))
    factor = (max(1, int(image.width / INPUT_SIZE / 2)), max(1, int(image.height / INPUT_SIZE / 2)))
    reduced = image.reduce(factor) if factor != (1, 1) else image
    width, height = image.width / factor[0], image.height / factor[1]  # the box in the reduced image

    def half(rows: slice) -> np.ndarray:
        box = (0, rows.start * height / INPUT_SIZE, width, rows.stop * height / INPUT_SIZE)
        return np.asarray(reduced.resize((INPUT_SIZE, rows.stop - rows.start), Image.Resampling.LANCZOS, box=box))

    return np.concatenate(strips.over_rows(half, INPUT_SIZE, INPUT_SIZE // 2))


def model_input(image: Image.Image, *, strips: StripPool = SERIAL) -> np.ndarray:
    """The 1x3x320x320 float32 tensor for an RGB image of any size."""
    small = _resized(image, strips)
    # (pixel / max - mean) / std as one multiply and one subtract per channel, written straight
    # into the planar layout: a tenth of the time of four passes over a float copy.
    scale = (1.0 / (max(int(small.max()), 1) * STD)).astype(np.float32)
    tensor = np.empty((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    np.multiply(small.transpose(2, 0, 1), scale[:, np.newaxis, np.newaxis], out=tensor[0])
    tensor[0] -= (MEAN / STD)[:, np.newaxis, np.newaxis]
    return tensor


def normalise(prediction: np.ndarray) -> np.ndarray:
    """Min-max normalise the fused map to [0, 1].

    A flat map carries no ranking to stretch, so it is kept as the sigmoid gave it
    instead of dividing by zero.
    """
    low, high = float(prediction.min()), float(prediction.max())
    if high - low < 1e-6:
        return np.clip(prediction, 0.0, 1.0)
    return (prediction - low) / (high - low)


class Segmenter:
    """One ONNX Runtime session over the U²-NetP model, built once per process."""

    def __init__(self, model_path: Path, *, threads: int, spinning: bool = SPINNING):
        self.model_path = Path(model_path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        # Without a memory pattern the arena stops growing with each new shape plan:
        # steady-state RSS ~350 MB instead of ~545 MB, at no measured speed cost.
        options.enable_mem_pattern = False
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name
        self._fused_output = self._session.get_outputs()[0].name
        # Shrinking the arena hands the ~275 MB of activations back to the OS after a run, so
        # that a big photo's full-size work (~200 MB at 12 MP) does not stack on top of them;
        # re-allocating them costs ~25% of inference time, so it is asked for per run.
        self._release_memory = ort.RunOptions()
        self._release_memory.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, tensor: np.ndarray, *, release_memory: bool = False) -> np.ndarray:
        """The model alone: the fused map (1x1x320x320, through its sigmoid) for a model input tensor."""
        run_options = self._release_memory if release_memory else None
        (prediction,) = self._session.run([self._fused_output], {self._input_name: tensor}, run_options)
        return prediction

    def predict_small(
        self,
        image: Image.Image,
        *,
        release_memory: bool = False,
        strips: StripPool = SERIAL,
        lap: Callable[[str], None] = lambda stage: None,
    ) -> np.ndarray:
        """The 320x320 float32 saliency map in [0, 1] for an RGB image.

        :param release_memory: give the model's working memory back to the OS afterwards.
        :param strips: the pool that makes the model's input (the same input with any pool).
        :param lap: called with "model input" once the tensor is made and with "inference" once
            the model has run, so that a caller can time the two apart.
        """
        tensor = model_input(image, strips=strips)
        lap("model input")
        prediction = self.run(tensor, release_memory=release_memory)
        lap("inference")
        return normalise(prediction[0, 0])

    def predict(self, image: Image.Image) -> np.ndarray:
        """The uint8 mask (0 background, 255 subject) at the image's own size."""
        return upsample(self.predict_small(image), image.size)


def upsample(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A [0, 1] saliency map as a uint8 mask of ``size`` (width, height), resized bilinearly."""
    mask = Image.fromarray(np.rint(small * 255).astype(np.uint8))
    return np.asarray(mask.resize(size, Image.Resampling.BILINEAR))
