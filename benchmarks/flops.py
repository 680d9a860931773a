"""FLOP counts for the benchmarks: multiply-accumulates (MACs) of the conv / dense layers of a Keras model, and
the analytic counts of the NRE neighbour lookup.

**Layer MACs** (:func:`layer_macs`, :func:`count_macs`) come from each layer's kernel shape and its output (or,
for a transposed convolution, input) shape; a bias, an activation, batch norm, pooling, resizing and the losses
are not counted, and neither are products that a layer's
kernel takes part in outside the layer's ``call`` (e.g. ``TopCNN.logits_for_orders`` multiplies ``fc8.kernel``
with ``tf.einsum``: such a benchmark adds that count itself).

* ``Dense`` (kernel ``(in, units)``): ``prod(output.shape[:-1]) * kernel.size``;
* ``Conv1D/2D/3D`` (grouped too) and ``DepthwiseConv1D/2D``: ``prod(output.shape without channels) * kernel.size``;
* ``SeparableConv1D/2D``: ``prod(output.shape without channels) * (depthwise + pointwise kernel sizes)``;
* ``Conv1D/2D/3DTranspose``: ``prod(input.shape without channels) * kernel.size``.

(``kernel.size`` = product of the kernel shape; a conv kernel ``(*k, in / groups, out)`` holds the products one
output position needs, a transposed one ``(*k, out, in)`` those one input position scatters.) One MAC is 2 FLOPs.

:func:`count_macs` has two modes. With ``run`` (a callable that runs the model eagerly, e.g.
``lambda: model(x, training=False)`` or a training step's forward pass), every counted layer is hooked for the
duration of the call and every call is recorded with its real shapes: a layer used twice (a siamese network,
OLED's reconstructor on x and on the masked x) counts twice, and the batch is included. Without ``run``, each
built layer counts once, from the input shape it was built with (``None`` dimensions count 1, i.e. per example).

**A training step** (:func:`train_step_flops`) = the forward pass (2 FLOPs per MAC of every layer call) + the
backward pass of the networks the step trains (an input and a weight gradient: 2 x their forward). The backward
pass through frozen layers that only hand a gradient on (e.g. the frozen decoder of Spot Artifacts) is left out.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Mapping

__all__ = ["layer_macs", "count_macs", "train_step_flops", "forward_flops", "kmeans_fit_flops",
           "cluster_lookup_flops", "brute_force_flops"]


def _prod(dims) -> int:
    return math.prod(1 if d is None else int(d) for d in dims)


def _without_channels(layer, shape) -> tuple:
    shape = tuple(shape)
    axis = 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else len(shape) - 1
    return shape[:axis] + shape[axis + 1:]


def _counted_types() -> dict[str, tuple]:
    import keras

    L = keras.layers
    return {"dense": (L.Dense,),
            "transpose": (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose),
            "separable": (L.SeparableConv1D, L.SeparableConv2D),
            "conv": (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D)}


def _kind(layer) -> str | None:
    for kind, types in _counted_types().items():
        if isinstance(layer, types):
            return kind
    return None


def layer_macs(layer, input_shape, output_shape) -> int | None:
    """MACs of one call of ``layer`` (a Keras layer) mapping ``input_shape`` to ``output_shape`` (module
    docstring); None for a layer of a kind not counted. ``None`` dimensions count 1."""
    kind = _kind(layer)
    if kind is None:
        return None
    if kind == "dense":
        return _prod(tuple(output_shape)[:-1]) * _prod(layer.kernel.shape)
    if kind == "transpose":
        return _prod(_without_channels(layer, input_shape)) * _prod(layer.kernel.shape)
    if kind == "separable":
        per_position = _prod(layer.depthwise_kernel.shape) + _prod(layer.pointwise_kernel.shape)
        return _prod(_without_channels(layer, output_shape)) * per_position
    return _prod(_without_channels(layer, output_shape)) * _prod(layer.kernel.shape)


def _layers(model) -> list:
    seen, out = set(), []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if id(layer) not in seen and _kind(layer) is not None:
            seen.add(id(layer))
            out.append(layer)
    return out


def _shape(x) -> tuple | None:
    if isinstance(x, (list, tuple)) and x:
        x = x[0]
    shape = getattr(x, "shape", None)
    return None if shape is None else tuple(None if d is None else int(d) for d in shape)


_MISSING = object()


@contextlib.contextmanager
def _recording(layers):
    """Hook ``call`` of every layer in ``layers`` (an instance attribute over the class method, removed again
    afterwards): yields the list of ``(layer, input_shape, output_shape)`` of every call made meanwhile."""
    calls, hooked = [], []

    def hook(layer, original):
        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            calls.append((layer, _shape(args[0] if args else kwargs.get("inputs")), _shape(out)))
            return out
        return call

    try:
        for layer in layers:
            hooked.append((layer, vars(layer).get("call", _MISSING)))  # an instance attribute already there?
            object.__setattr__(layer, "call", hook(layer, layer.call))
        yield calls
    finally:
        for layer, before in hooked:
            if before is _MISSING:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", before)


def count_macs(model, run: Callable[[], object] | None = None,
               groups: Mapping[str, object] | None = None) -> dict:
    """MACs of the Conv / Dense / DepthwiseConv / SeparableConv / transposed-conv layers of ``model`` (any built
    Keras layer or model, nested sub-models included).

    ``run``: a callable that makes the model compute (eagerly, so that the hooked layers run): every layer call
    it makes is counted with its real shapes (module docstring); None: every built layer once, from the shape
    it was built with. ``groups`` (name -> a sub-layer of ``model``) also sums the MACs of the layers inside each.

    Returns ``{"macs": total, "groups": {name: macs}, "layers": [{"name", "class", "calls", "macs"}],
    "method": "forward pass" | "built shapes"}``.
    """
    layers = _layers(model)
    per_layer: dict[int, dict] = {}
    if run is not None:
        with _recording(layers) as calls:
            run()
        records = [(layer, layer_macs(layer, i, o)) for layer, i, o in calls]
    else:
        records = []
        for layer in layers:
            built = getattr(layer, "_build_shapes_dict", None)
            if not built:
                continue
            input_shape = tuple(built.values())[0]
            records.append((layer, layer_macs(layer, input_shape, layer.compute_output_shape(input_shape))))
    for layer, macs in records:
        row = per_layer.setdefault(id(layer), {"name": layer.path if hasattr(layer, "path") else layer.name,
                                               "class": type(layer).__name__, "calls": 0, "macs": 0})
        row["calls"] += 1
        row["macs"] += int(macs)
    group_macs = {}
    for name, sub in (groups or {}).items():
        ids = {id(layer) for layer in _layers(sub)}
        group_macs[name] = sum(macs for layer, macs in records if id(layer) in ids)
    return {"macs": sum(r["macs"] for r in per_layer.values()), "groups": group_macs,
            "layers": list(per_layer.values()), "method": "forward pass" if run is not None else "built shapes"}


def forward_flops(macs: int) -> int:
    """FLOPs of an inference pass of ``macs`` multiply-accumulates (2 each)."""
    return 2 * int(macs)


def train_step_flops(forward_macs: int, trained_macs: int | None = None) -> int:
    """FLOPs of a training step whose forward pass makes ``forward_macs`` MACs, of which ``trained_macs`` (all,
    if None) in the networks it trains: forward 2 per MAC + backward (input and weight gradients) 4 per trained
    MAC, i.e. 3 x the forward when everything is trained (module docstring)."""
    trained = forward_macs if trained_macs is None else trained_macs
    return 2 * int(forward_macs) + 4 * int(trained)


# ------------------------------------------------------------------------------- NRE neighbour lookup (analytic)
# The float32 matrix products of nre_tf/neighbours.py; norms, arg-max / top-T and the far draws are left out.
def kmeans_fit_flops(n: int, dim: int, k: int, fit_sample: int | None, n_iter: int,
                     init_per_cluster: int = 50) -> int:
    """``KMeansNeighbours.fit``: k-means++ seeding on ``min(m, 50 K)`` codes (one product with the first centre,
    then ``2 + int(log K)`` candidate columns per further centre), ``n_iter`` Lloyd assignments of the ``m``
    fitted codes (``m = min(n, fit_sample)``) and the final assignment of all ``n``, each ``2 m K dim``."""
    m = n if not fit_sample else min(n, int(fit_sample))
    n_pp = min(m, init_per_cluster * k)
    trials = 2 + int(math.log(k))
    seeding = 2 * dim * n_pp * (1 + trials * (k - 1))
    return seeding + 2 * dim * k * (m * int(n_iter) + n)


def cluster_lookup_flops(cluster_sizes, dim: int, query_sizes=None, n_queries_assigned: int = 0,
                         k: int | None = None) -> int:
    """Near search of ``KMeansNeighbours``: the queries of cluster c against its members, ``2 dim q_c s_c``
    (``q_c`` = ``query_sizes`` or, for the training vectors themselves, the cluster sizes ``s_c``), plus the
    assignment of ``n_queries_assigned`` new queries to the ``k`` centres (``2 n K dim``; ``query``)."""
    sizes = [int(s) for s in cluster_sizes]
    queries = sizes if query_sizes is None else [int(q) for q in query_sizes]
    within = 2 * dim * sum(q * s for q, s in zip(queries, sizes))
    return within + 2 * dim * int(k or len(sizes)) * int(n_queries_assigned)


def brute_force_flops(n: int, n_queries: int, dim: int) -> int:
    """``brute_force_neighbours``: two all-pairs cosine products (near, and far as the near set of -q)."""
    return 2 * 2 * int(n) * int(n_queries) * int(dim)
