from __future__ import annotations

from dataclasses import replace

import pytest
from policy_helpers import write_dist, write_policy_card

from pytest_kpmodel.card import load_card
from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.policy import kp_dependencies
from pytest_kpmodel.policy.dependencies import (
    build_supports,
    check_cuda,
    check_gpu_arch,
    check_os,
    parse_gpu_arch,
)
from pytest_kpmodel.policy.machine import Platform, probe_platform
from pytest_kpmodel.policy.result import SkipCheck

CPU = Platform(python="3.11.7", sys_platform="linux", machine="x86_64", torch="2.5.0",
               cuda_build="12.4", no_gpu_reason="no CUDA GPU is available")  # fmt: skip
H100 = replace(CPU, gpu="NVIDIA H100", no_gpu_reason=None, capability=(9, 0),
               arch_list=("sm_80", "sm_86", "sm_90"))  # fmt: skip


def _statuses(result):
    return {s.name: s.status for s in result.subchecks}


# -- python, os ----------------------------------------------------------------------------------------
def test_python_version():
    ok = kp_dependencies(python=">=3.10,<3.12", vulnerabilities=False, platform=CPU)
    assert ok.passed and _statuses(ok) == {"python": "passed"}
    bad = kp_dependencies(python=">=3.12", vulnerabilities=False, platform=CPU)
    [finding] = bad.findings
    assert finding.check == "dependencies.python"
    assert finding.message == "needs Python >=3.12 (marker); this is Python 3.11.7"


@pytest.mark.parametrize(
    "allowed, sys_platform, machine, ok",
    [
        (["linux"], "linux", "x86_64", True),
        (["linux", "darwin"], "darwin", "arm64", True),
        (["macos"], "darwin", "arm64", True),
        (["windows"], "win32", "AMD64", True),
        (["linux-x86_64"], "linux", "x86_64", True),
        (["linux-aarch64"], "linux", "x86_64", False),
        (["darwin-arm64"], "darwin", "arm64", True),
        (["linux/amd64"], "linux", "x86_64", True),
        (["freebsd"], "freebsd14", "amd64", True),
        (["linux", "darwin"], "win32", "AMD64", False),
    ],
)
def test_os(allowed, sys_platform, machine, ok):
    plat = replace(CPU, sys_platform=sys_platform, machine=machine)
    findings = check_os(allowed, plat)
    assert (not findings) == ok
    if not ok:
        assert f"this is {sys_platform} {machine}" in findings[0].message


# -- requirements against fake installed distributions -------------------------------------------------
def test_requires(site):
    write_dist(site, "torch", "2.5.1+cu124")
    write_dist(site, "Torch_Vision", "0.18.0")  # PEP 503: matches "torch-vision"/"torch.vision"
    write_dist(site, "nightly", "3.0.0rc1")
    result = kp_dependencies(
        requires=[
            "torch>=2.4",
            "torch==2.5.1",  # a local version label matches the public one
            "torch.vision>=0.19",
            "missing-pkg",
            "nightly>=2.9",  # an installed pre-release satisfies the range
            "winonly>=1; sys_platform == 'nonexistent-os'",
        ],
        vulnerabilities=False,
        paths=[str(site)],
    )
    fails = [f.message for f in result.findings if f.severity == "fail"]
    assert fails == [
        "requires 'torch.vision>=0.19' (marker), but torch.vision 0.18.0 is installed",
        "requires 'missing-pkg' (marker), but missing-pkg is not installed",
    ]
    [info] = [f for f in result.findings if f.severity == "info"]
    assert "not needed on this platform" in info.message
    assert _statuses(result) == {"requires": "failed"}


def test_requires_with_extras(site):
    write_dist(site, "lib", "1.0", requires=("base>=1", "fast>=2; extra == 'speed'"))
    write_dist(site, "base", "1.0")
    write_dist(site, "fast", "1.5")
    result = kp_dependencies(requires=["lib[speed]"], vulnerabilities=False, paths=[str(site)])
    [finding] = result.findings
    assert finding.message == (
        "requires 'lib[speed]': its extra 'speed' needs 'fast>=2' (marker), "
        "but fast 1.5 is installed"
    )
    assert kp_dependencies(requires=["lib"], vulnerabilities=False, paths=[str(site)]).passed


def test_bad_requirement_is_a_clear_error(site):
    with pytest.raises(KpModelError, match="'torch>>2' is not a requirement"):
        kp_dependencies(requires=["torch>>2"], vulnerabilities=False, paths=[str(site)])


# -- CUDA and GPU architecture ----------------------------------------------------------------------------
def test_cuda_skipped_without_gpu():
    with pytest.raises(SkipCheck, match="no CUDA GPU is available.*built with CUDA 12.4"):
        check_cuda(">=12.0", CPU)
    with pytest.raises(SkipCheck, match="CPU-only build"):
        check_cuda(">=12.0", replace(CPU, cuda_build=None))
    with pytest.raises(SkipCheck, match="torch cannot be imported"):
        check_cuda(">=12.0", replace(CPU, torch=None, torch_error="torch cannot be imported (x)"))
    with pytest.raises(SkipCheck, match="ROCm"):
        check_cuda(">=12.0", replace(H100, hip_build="6.1"))


def test_cuda_compared_on_gpu():
    assert check_cuda(">=12.0", H100) == []
    [finding] = check_cuda(">=12.6", H100, "card")
    assert finding.message == "needs CUDA >=12.6 (card); torch 2.5.0 uses CUDA 12.4"


@pytest.mark.parametrize(
    "spec, capability, ok",
    [
        (">=8.0", (9, 0), True),
        (">=8.0", (7, 5), False),
        ("8.6", (8, 6), True),
        ("8.6", (8, 9), False),
        ("sm_90", (9, 0), True),
        ("sm_90", (8, 0), False),
        ("sm_80,sm_86", (8, 6), True),
        ("sm_100", (10, 0), True),
        (">=8.0,<10", (12, 0), False),
    ],
)
def test_gpu_arch_spec(spec, capability, ok):
    assert parse_gpu_arch(spec)(capability) == ok


def test_gpu_arch_spec_errors():
    with pytest.raises(KpModelError, match="do not mix"):
        parse_gpu_arch("sm_80,>=9.0")
    with pytest.raises(KpModelError, match="not a version specifier"):
        parse_gpu_arch("ampere")


@pytest.mark.parametrize(
    "capability, arch_list, ok",
    [
        ((8, 6), ["sm_80"], True),  # same major, newer minor runs the sm_80 cubin
        ((8, 0), ["sm_86"], False),  # but not the other way round
        ((8, 9), ["sm_80", "sm_90"], True),
        ((9, 0), ["sm_80", "sm_86"], False),  # new major: no cubin, no PTX
        ((9, 0), ["sm_80", "compute_80"], True),  # PTX is JIT-compiled
        ((9, 0), ["sm_90a"], True),
        ((10, 0), ["sm_90a"], False),
        ((12, 0), ["sm_75", "sm_120"], True),
        ((7, 0), [], False),
    ],
)
def test_build_supports(capability, arch_list, ok):
    assert build_supports(capability, arch_list) == ok


def test_gpu_arch_on_gpu():
    assert check_gpu_arch(">=8.0", H100) == []
    [finding] = check_gpu_arch(">=10.0", H100)
    assert "NVIDIA H100 has compute capability 9.0 (sm_90)" in finding.message
    old_build = replace(H100, arch_list=("sm_70", "sm_75"))
    [finding] = check_gpu_arch("any", old_build)
    assert "torch 2.5.0 was built for sm_70, sm_75, which cannot run on NVIDIA H100" in (
        finding.message
    )
    with pytest.raises(SkipCheck, match="there is no GPU"):
        check_gpu_arch(">=8.0", CPU)


def test_device_cpu_skips_gpu_checks():
    plat = probe_platform("cpu")
    assert plat.gpu is None and "'cpu'" in plat.no_gpu_reason
    import torch

    here = probe_platform()
    assert (here.gpu is not None) == torch.cuda.is_available()
    assert here.cuda_build == torch.version.cuda


# -- assembling: defaults from the card, skipped sub-checks -------------------------------------------------
def test_partial_skip_is_reported_but_not_a_skip(site, tmp_path):
    write_dist(site, "torch", "2.5.0")
    card = load_card(write_policy_card(tmp_path / "m", """[dependencies]
python = ">=3.10"
requires = ["torch>=2.4"]
cuda = ">=12.0"
gpu_arch = ">=8.0"
os = ["linux"]"""))  # fmt: skip
    result = kp_dependencies(card, paths=[str(site)], platform=CPU)
    assert result.passed and result.skipped is None
    assert _statuses(result) == {
        "python": "passed",
        "requires": "passed",
        "cuda": "skipped",
        "gpu_arch": "skipped",
        "os": "passed",
        "vulnerabilities": "skipped",
    }
    assert "--kp-osv-db" in result.skipped_subchecks["vulnerabilities"]
    assert result.summary().startswith("python passed, requires passed, cuda skipped (no CUDA GPU")
    skipped = [f for f in result.findings if "skipped" in f.details]
    assert {f.check for f in skipped} == {
        "dependencies.cuda",
        "dependencies.gpu_arch",
        "dependencies.vulnerabilities",
    }
    assert all(f.severity == "info" for f in skipped)
    assert result.to_json()["subchecks"][2]["status"] == "skipped"
    # marker arguments override the card; False drops a question
    stricter = kp_dependencies(card, python=">=3.12", cuda=False, gpu_arch=False,
                               vulnerabilities=False, paths=[str(site)], platform=CPU)  # fmt: skip
    assert _statuses(stricter) == {"python": "failed", "requires": "passed", "os": "passed"}
    assert "(card)" in kp_dependencies(card, python=None, platform=replace(CPU, python="3.9.1"),
                                       vulnerabilities=False, paths=[str(site)]).failures[0]  # fmt: skip


def test_everything_skipped_skips_the_check():
    result = kp_dependencies(cuda=">=12", gpu_arch="sm_90", platform=CPU)
    assert not result.passed
    assert result.skipped.startswith("cuda: no CUDA GPU is available")
    assert "gpu_arch:" in result.skipped and "vulnerabilities:" in result.skipped


def test_nothing_asked_is_skipped_not_passed():
    result = kp_dependencies(vulnerabilities=False, platform=CPU)
    assert result.skipped and "nothing to check" in result.skipped
    assert not result.passed


# -- the evaluators the plugin wires into checks.EVALUATORS ------------------------------------------------
class _Settings:
    def __init__(self, osv_db=None, sbom=None):
        self.osv_db, self.sbom = osv_db, sbom


class _Session:
    """Duck-typed stand-in for KpSession: card, settings, device, model, weights_digest."""

    def __init__(self, card, settings, model_error=None):
        self.card, self.settings, self.device = card, settings, "cpu"
        self.has_model, self.weights_digest = True, "cd" * 32
        self._model_error = model_error

    @property
    def model(self):
        raise self._model_error


def test_session_evaluators(tmp_path):
    from pytest_kpmodel.errors import RefusedToLoad
    from pytest_kpmodel.policy import (
        evaluate_kp_dependencies,
        evaluate_kp_license,
        write_session_sbom,
    )

    card = load_card(write_policy_card(tmp_path / "m", """[license]
spdx = "MIT"
[dependencies]
python = ">=3.8"
cuda = ">=12.0\""""))  # fmt: skip
    session = _Session(card, _Settings(sbom=tmp_path / "out" / "sbom.json"),
                       RefusedToLoad("code format needs --kp-allow-code"))  # fmt: skip
    assert evaluate_kp_license(session).passed
    assert not evaluate_kp_license(session, deny=["MIT"]).passed
    with pytest.raises(KpModelError, match="keyword arguments only"):
        evaluate_kp_license(session, ["MIT"])
    result = evaluate_kp_dependencies(session)
    assert result.passed and result.skipped is None
    skipped = result.skipped_subchecks
    assert "'cpu'" in skipped["cuda"]
    assert "--kp-allow-code" in skipped["custom_ops"]
    assert "--kp-osv-db" in skipped["vulnerabilities"]
    assert [s.name for s in evaluate_kp_dependencies(session, custom_ops=False).subchecks] == [
        "python",
        "cuda",
        "vulnerabilities",
    ]
    written = write_session_sbom(session)
    assert written is not None and written.path.is_file()
    assert write_session_sbom(_Session(card, _Settings())) is None
