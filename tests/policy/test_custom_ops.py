from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from pytest_kpmodel.policy import kp_dependencies  # noqa: E402
from pytest_kpmodel.policy.custom_ops import (  # noqa: E402
    CustomCode,
    check_custom_code,
    find_custom_code,
)
from pytest_kpmodel.policy.result import SkipCheck  # noqa: E402

NS = "kpmodel_policy_test"
_LIB = None  # keeps the registration alive for the whole module (a Library deregisters on del)


def _register_op() -> None:
    global _LIB
    if _LIB is not None:
        return
    lib = torch.library.Library(NS, "DEF")
    lib.define("scale2(Tensor x) -> Tensor")
    lib.impl("scale2", lambda x: x * 2, "CompositeExplicitAutograd")
    lib.impl("scale2", lambda x: torch.empty_like(x), "Meta")
    _LIB = lib


class Inner(torch.nn.Module):
    def forward(self, x):
        return torch.ops.kpmodel_policy_test.scale2(x)


class WithCustomOp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)
        self.inner = Inner()

    def forward(self, x):
        return self.inner(self.lin(x)).relu()


class KeypointHead(torch.nn.Module):  # a vendor's custom layer, in eager mode
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x) * 2


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.ReLU())
        self.head = KeypointHead()
        self.head2 = KeypointHead()

    def forward(self, x):
        return self.head(self.backbone(x)) + self.head2(x)


def _script(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in recent torch
        return torch.jit.script(module)


@pytest.fixture(scope="module")
def scripted():
    _register_op()
    return _script(WithCustomOp())


def test_torchscript_custom_op(scripted):
    [found] = find_custom_code(scripted)
    assert found.kind == "op" and found.name == f"{NS}::scale2"
    assert found.registered
    assert "inner.forward" in found.where
    assert found.source and "test_custom_ops.py" in found.source  # where it was registered


def test_torchscript_op_in_free_function_and_control_flow():
    _register_op()

    def _helper(x):
        if bool(x.sum() > 0):
            return torch.ops.kpmodel_policy_test.scale2(x)
        return x

    helper = _script(_helper)

    class CallsHelper(torch.nn.Module):
        def forward(self, x):
            return helper(x)

    [found] = find_custom_code(_script(CallsHelper()))
    assert found.name == f"{NS}::scale2" and found.where == ("forward",)


def test_builtin_ops_only_is_clean():
    class Plain(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x) + 1

    assert find_custom_code(_script(Plain())) == []


def test_eager_custom_layers():
    found = find_custom_code(Model())
    names = {f.name: f for f in found}
    assert set(names) == {f"{__name__}.Model", f"{__name__}.KeypointHead"}
    head = names[f"{__name__}.KeypointHead"]
    assert head.kind == "layer" and head.where == ("head", "head2")
    assert head.source.split(":")[0].endswith("test_custom_ops.py")
    assert int(head.source.rsplit(":", 1)[1]) > 0
    assert names[f"{__name__}.Model"].where == ("<root>",)


def test_scripted_submodule_inside_eager_model(scripted):
    class Hybrid(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.part = scripted

        def forward(self, x):
            return self.part(x)

    found = {f.name: f for f in find_custom_code(Hybrid())}
    assert set(found) == {f"{NS}::scale2", f"{__name__}.{Hybrid.__qualname__}"}
    assert "part.inner.forward" in found[f"{NS}::scale2"].where


def test_torchvision_model_has_no_custom_layers():
    from torchvision.ops import MultiScaleRoIAlign

    assert find_custom_code(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))) == []
    assert find_custom_code(MultiScaleRoIAlign(["0"], 7, 2)) == []


def test_exported_program_custom_op():
    _register_op()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(WithCustomOp(), (torch.randn(2, 3),))
    [found] = find_custom_code(ep)
    assert found.name == f"{NS}::scale2" and found.registered


def test_adapter_is_unwrapped(scripted):
    class Adapter:
        def __init__(self, module):
            self.module = module

        def predict(self, images):
            return []

    assert [f.name for f in find_custom_code(Adapter(scripted))] == [f"{NS}::scale2"]
    with pytest.raises(SkipCheck, match="cannot inspect"):
        find_custom_code(object())


@pytest.mark.parametrize(
    "allowed, severity",
    [(None, "warn"), (True, "info"), ([f"{NS}::*"], "info"), (["other::*"], "fail"), ([], "fail")],
)
def test_custom_ops_policy(scripted, allowed, severity):
    findings, found = check_custom_code(scripted, allowed)
    assert len(found) == 1
    [finding] = findings
    assert finding.check == "dependencies.custom_ops" and finding.severity == severity
    assert f"custom op {NS}::scale2 (defined at" in finding.message


def test_unregistered_op_always_fails(monkeypatch):
    import pytest_kpmodel.policy.custom_ops as deps

    ghost = CustomCode("op", "ghostlib::nms", None, ("forward",), registered=False)
    monkeypatch.setattr(deps, "find_custom_code", lambda model: [ghost])
    [finding] = check_custom_code(object(), True)[0]
    assert finding.severity == "fail" and "not registered in this process" in finding.message


def test_kp_dependencies_custom_ops(scripted):
    result = kp_dependencies(model=scripted, custom_ops=[], vulnerabilities=False)
    assert [s.name for s in result.subchecks] == ["custom_ops"]
    assert not result.passed
    lazy = kp_dependencies(model=lambda: Model(), vulnerabilities=False)  # loaded on demand
    assert lazy.passed and {f.severity for f in lazy.findings} == {"warn"}
    assert kp_dependencies(model=scripted, custom_ops=False, vulnerabilities=False).skipped


def test_model_that_cannot_load_skips_custom_ops():
    from pytest_kpmodel.errors import RefusedToLoad

    def load():
        raise RefusedToLoad("pickle payload found")

    result = kp_dependencies(model=load, python=">=3", vulnerabilities=False)
    assert result.skipped is None
    assert "pickle payload found" in result.skipped_subchecks["custom_ops"]


def test_the_plugins_family_layers_are_one_info_line():
    """detectron2's layers as the plugin implements them come with the plugin, not the model;
    a vendor's layer beside them still fails under custom_ops=[]."""
    from pytest_kpmodel.adapters.detectron2.layers import Conv2d, FrozenBatchNorm2d

    model = torch.nn.Sequential(Conv2d(3, 4, 1), FrozenBatchNorm2d(4), KeypointHead())
    findings, found = check_custom_code(model, [])
    assert [c.name for c in found] == [f"{__name__}.KeypointHead"]
    family = [f for f in findings if f.severity == "info"]
    assert len(family) == 1 and family[0].details["family"] == "detectron2"
    assert family[0].details["layers"] == ["Conv2d", "FrozenBatchNorm2d"]
    assert "the model ships no code" in family[0].message
    assert [f.severity for f in findings if "KeypointHead" in f.message] == ["fail"]
