"""kp_security and kp_scan through the plugin: unsafe weights are never loaded, and what model
code does at run time is caught by the guard."""

from __future__ import annotations

import pickle
import textwrap

SPEC = """
import pytest

@pytest.mark.kp_security
def test_secure():
    pass

def test_uses_model(kp_predictions):
    pass
"""


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_checkpoint_is_refused(pytester, tiny_card):
    import zipfile

    folder = pytester.path / "evil"
    folder.mkdir()
    for f in tiny_card.parent.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    marker = pytester.path / "PWNED"
    # A torch.save-shaped zip whose data.pkl opens a file when unpickled.
    with zipfile.ZipFile(folder / "model.pt", "w") as z:
        z.writestr("model/data.pkl", pickle.dumps({"x": _Payload(str(marker))}, protocol=2))
        z.writestr("model/version", "3\n")
    card = folder / "kpmodel.toml"
    text = card.read_text().replace('format = "safetensors"', 'format = "pytorch"')
    card.write_text(text.replace('weights = "model.safetensors"', 'weights = "model.pt"'))
    pytester.makepyfile(SPEC)
    result = pytester.runpytest(f"--kp-model={card}")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*refused to load:*", "*kp_security:*open, which is not on the allow-list*"]
    )
    assert not marker.exists()


def _python_model(pytester, body: str, name: str):
    folder = pytester.path / name
    folder.mkdir()
    (folder / "vendor.py").write_text(
        textwrap.dedent(
            """
            import torch
            from pytest_kpmodel.adapters.base import Prediction

            class Model:
                def predict(self, images):
            %s
                    return [Prediction(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long),
                                       torch.zeros(0, 17, 3)) for _ in images]

            def build():
                return Model()
            """
        )
        % textwrap.indent(textwrap.dedent(body), " " * 8)
    )
    (folder / "kpmodel.toml").write_text(
        f'schema = 1\n[model]\nname = "{name}"\nformat = "python"\narchitecture = "vendor:build"\n'
    )
    return folder / "kpmodel.toml"


def test_network_subprocess_and_writes_are_caught(pytester, tmp_path):
    outside = tmp_path / "written.txt"
    cases = {
        "net": "import socket; socket.create_connection(('127.0.0.1', 9), timeout=0.2)",
        "proc": "import subprocess; subprocess.run(['true'])",
        "write": f"open({str(outside)!r}, 'w').write('x')",
    }
    expected = {"net": "network", "proc": "subprocess", "write": "write"}
    for name, body in cases.items():
        card = _python_model(pytester, body, name)
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.kp_security(code=True)
            def test_secure():
                pass
            """
        )
        result = pytester.runpytest(f"--kp-model={card}")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*blocked {expected[name]}:*"])
    assert not outside.exists()


def test_code_formats_need_permission(pytester):
    card = _python_model(pytester, "pass", "honest")
    pytester.makepyfile(SPEC.replace("kp_predictions", "kp_model"))
    result = pytester.runpytest(f"--kp-model={card}")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]model.format[]] 'python' runs the vendor's code; pass --kp-allow-code*",
            "*format 'python' runs code shipped with the model*",
        ]
    )
    result = pytester.runpytest(f"--kp-model={card}", "--kp-allow-code")
    result.stdout.fnmatch_lines(["*format 'python' runs code shipped with the model*"])
    result.assert_outcomes(failed=1, passed=1)


def test_clean_model_passes_and_scan_fixture(pytester, tiny_card):
    pytester.makepyfile(
        SPEC
        + """
def test_scan(kp_scan):
    assert kp_scan.ok and kp_scan.kind == "safetensors"
"""
    )
    pytester.runpytest(f"--kp-model={tiny_card}").assert_outcomes(passed=3)


def test_bad_security_marker_argument(pytester, tiny_card):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kp_security(netwrok=True)
        def test_secure():
            pass
        """
    )
    result = pytester.runpytest(f"--kp-model={tiny_card}")
    result.stderr.fnmatch_lines(["*kp_security: unknown argument(s) netwrok*"])
