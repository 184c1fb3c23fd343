"""ONNX checks: parse the protobuf with the ``onnx`` package (no graph is executed, no external
data is read), then

* every tensor stored as external data (initializers, sparse initializers, node attribute
  tensors, in subgraphs and local functions, training graphs) names a *relative* path that,
  after normalisation and symlink resolution, stays inside the model's folder, exists, and
  has ``offset + length`` within that file;
* custom operator domains are listed: ``com.microsoft`` (onnxruntime's built-in contrib ops)
  as info; any other non-standard domain that is not a function defined in the model needs a
  native custom-op library, i.e. code: a ``security.code`` finding unless code is allowed.

Without the ``onnx`` package a file that looks like ONNX is ``unverifiable``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from .report import UNVERIFIABLE, Collector

STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training"}
)
BUILTIN_RUNTIME_DOMAINS = frozenset(
    {"com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc"}
)


def looks_like_onnx(buf: Any, size: int) -> bool:
    # ModelProto serialises ir_version (field 1, varint) first: tag byte 0x08
    return size >= 4 and buf[0] == 0x08


def parse_onnx(buf: Any, size: int) -> Any | None:
    """The ModelProto, or None when ``onnx`` is missing or the bytes are not a model."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(buf[:size])
    except Exception:  # protobuf's DecodeError and friends
        return None
    if model.ir_version <= 0 or not model.HasField("graph"):
        return None
    return model


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        for sp in attr.sparse_tensors:
            yield sp.values
            yield sp.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for g in attr.graphs:
            yield from _graph_tensors(g)


def _graph_nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graph_nodes(attr.g)
            for g in attr.graphs:
                yield from _graph_nodes(g)


def _all_graphs(model: Any) -> Iterator[Any]:
    yield model.graph
    for ti in model.training_info:
        if ti.HasField("initialization"):
            yield ti.initialization
        if ti.HasField("algorithm"):
            yield ti.algorithm


def scan_onnx(
    model: Any,
    folder: str | None,
    col: Collector,
    allow_code: bool,
    member: str | None = None,
    covered: list[str] | None = None,
) -> int:
    """Check a parsed ModelProto. ``folder`` is the model file's directory (None for bytes).
    ``covered`` receives the external data files whose tensor ranges were checked."""
    tensors = 0
    ext_seen: set[tuple[str, str, str]] = set()
    real_folder = os.path.realpath(folder) if folder is not None else None

    def tensors_iter() -> Iterator[Any]:
        for g in _all_graphs(model):
            yield from _graph_tensors(g)
        for f in model.functions:
            for node in f.node:
                yield from _node_tensors(node)

    for t in tensors_iter():
        tensors += 1
        if t.data_location != 1:  # TensorProto.EXTERNAL
            continue
        kv = {e.key: e.value for e in t.external_data}
        loc = kv.get("location", "")
        key = (loc, kv.get("offset", ""), kv.get("length", ""))
        if key in ext_seen:
            continue
        ext_seen.add(key)
        full = _check_external(t.name, kv, real_folder, col, member)
        if full is not None and covered is not None:
            covered.append(full)
    # custom op domains
    local_functions = {(f.domain, f.name) for f in model.functions}
    domains: dict[str, set[str]] = {}
    nodes = [n for g in _all_graphs(model) for n in _graph_nodes(g)]
    nodes += [n for f in model.functions for n in f.node]
    for node in nodes:
        if node.domain in STANDARD_DOMAINS or (node.domain, node.op_type) in local_functions:
            continue
        domains.setdefault(node.domain, set()).add(node.op_type)
    for op in model.opset_import:
        if (
            op.domain not in STANDARD_DOMAINS
            and op.domain not in domains
            and not any(d == op.domain for d, _ in local_functions)
        ):
            domains.setdefault(op.domain, set())
    for domain, ops in sorted(domains.items()):
        listed = ", ".join(sorted(ops)[:10]) or "(opset import only)"
        if domain in BUILTIN_RUNTIME_DOMAINS or allow_code or not ops:
            col.add(
                "security.onnx",
                "custom-domain",
                f"custom op domain {domain!r}: {listed}",
                severity="info",
                member=member,
                name=domain,
            )
        else:
            col.add(
                "security.code",
                "custom-domain",
                f"custom op domain {domain!r} ({listed}) needs a native custom-op library "
                "(code); allow with code=True",
                member=member,
                name=domain,
            )
    return tensors


def _check_external(
    tname: str, kv: dict[str, str], real_folder: str | None, col: Collector, member: str | None
) -> str | None:
    loc = kv.get("location", "")

    def add(code: str, why: str, verdict: str | None = None) -> None:
        col.add("security.onnx", code, why, verdict=verdict, member=member, name=loc[:200])

    if not loc:
        add("external-data", f"tensor {tname!r} is external but names no location")
        return
    if (
        "\x00" in loc
        or os.path.isabs(loc)
        or loc.startswith(("/", "\\"))
        or (len(loc) > 1 and loc[1] == ":")
        or ".." in loc.replace("\\", "/").split("/")
    ):
        add(
            "external-escape",
            f"external data path {loc!r} of tensor {tname!r} leaves the model folder",
        )
        return
    if real_folder is None:
        add(
            "external-data",
            f"tensor {tname!r} uses external data {loc!r}, which cannot be "
            "checked without the model folder",
            UNVERIFIABLE,
        )
        return
    full = os.path.realpath(os.path.join(real_folder, loc))
    if os.path.commonpath([full, real_folder]) != real_folder:
        add(
            "external-escape",
            f"external data path {loc!r} of tensor {tname!r} resolves to "
            f"{full}, outside the model folder (symlink)",
        )
        return
    if not os.path.isfile(full):
        add(
            "external-missing",
            f"external data file {loc!r} of tensor {tname!r} is missing",
            UNVERIFIABLE,
        )
        return
    try:
        offset = int(kv.get("offset", "0") or 0)
        length = int(kv["length"]) if kv.get("length") else None
    except ValueError:
        add("external-data", f"external data offset/length of tensor {tname!r} are not ints")
        return
    fsize = os.path.getsize(full)
    if (
        offset < 0
        or (length is not None and (length < 0 or offset + length > fsize))
        or (offset > fsize)
    ):
        add(
            "external-bounds",
            f"external data of tensor {tname!r} [{offset}, +{length}) is "
            f"outside {loc!r} ({fsize} bytes)",
        )
        return None
    return full
