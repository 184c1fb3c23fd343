"""index.html from kp-report.json: sections appear only with their data, everything inlined."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_kpmodel.findings import CheckResult, Finding
from pytest_kpmodel.report import json_report
from pytest_kpmodel.report.assets import Assets, artifact, section_of
from pytest_kpmodel.report.html import HTML_NAME, render, write_html
from pytest_kpmodel.report.write import card_section

SECTION_IDS = ("checks", "provenance", "license", "security", "accuracy", "speed", "robustness",
               "gallery", "run")  # fmt: skip


def sections(page: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)">', page)


def assert_self_contained(page: str) -> None:
    """Nothing the browser would fetch: every image a data: URI, no URL in any attribute (URLs
    from the card, e.g. its source, appear as escaped text only), no stylesheet or script
    files, no url() or @import in the CSS."""
    srcs = re.findall(r'<img[^>]* src="([^"]*)"', page)
    assert all(s.startswith("data:image/") for s in srcs), [s[:40] for s in srcs]
    attrs = re.findall(r'\s([a-zA-Z-]+)="([^"]*)"', page)
    assert not [(k, v[:80]) for k, v in attrs if re.search(r"(https?|ftp|file):", v)]
    assert "<link" not in page and "<script" not in page and "<iframe" not in page
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "url(" not in style and "@import" not in style and "@font-face" not in style


def assert_rendered_cleanly(page: str) -> None:
    assert 'class="render-error"' not in page, re.findall(r'render-error">([^<]*)', page)
    assert 'class="artifact-note"' not in page, re.findall(r'artifact-note">([^<]*)', page)


class _Session:
    """What json_report.build reads from a KpSession, for a run that checked nothing."""

    def __init__(self, checks=(), sections=None) -> None:
        self.settings = SimpleNamespace(device="cpu", precision="fp32", batch_size=1,
                                        max_images=None, seed=0)  # fmt: skip
        self.device = "cpu"
        self.checks = list(checks)
        self.sections = dict(sections or {})
        self.warnings = []
        self.weights_digest = "0" * 64

    def computed(self, piece: str):
        return None  # no scan, no guard: the run computed nothing

    @property
    def card(self):
        return SimpleNamespace(
            model=SimpleNamespace(
                name="kp-tiny", version="0.1", sha256="0" * 64, format="safetensors"
            ),
            path=Path("/models/kp-tiny/kpmodel.toml"),
            unpinned=False,  # a card, not a bare checkpoint (report key 'unpinned')
        )


def built(checks=(), sections=None) -> dict:
    """A report as the plugin writes it (json_report.build), read back through JSON."""
    return json.loads(json.dumps(json_report.build(_Session(checks, sections)), default=str))


def test_minimal_report_shows_the_model_and_environment_only(tmp_path):
    report = {"schema": 1, "model": {"name": "kp-tiny", "version": "0.1", "format": "onnx"},
              "environment": {"python": "3.11.2", "torch": "2.4.0"}}  # fmt: skip
    page = render(report, tmp_path)
    assert sections(page) == ["run"]
    assert "kp-tiny 0.1" in page and "3.11.2" in page and "NOTHING CHECKED" in page
    for heading in ("Accuracy", "Speed", "Robustness", "Security", "Sample predictions"):
        assert f">{heading}<" not in page
    assert_rendered_cleanly(page)
    assert_self_contained(page)


def test_report_as_the_plugin_builds_it_without_checks():
    page = render(built())
    assert sections(page) == ["run"]
    assert "matches card" in page  # the weights digest equals the pinned one
    assert_rendered_cleanly(page)


def test_a_license_only_run_shows_just_that():
    lic = CheckResult("kp_license", findings=[
        Finding("license.model", "AGPL-3.0-only is copyleft; the spec forbids copyleft"),
    ])  # fmt: skip
    entry = {"nodeid": "specs/test_a.py::test_license", "marker": "kp_license", **lic.to_json()}
    page = render(built([entry]))
    assert sections(page) == ["checks", "license", "run"]
    assert "AGPL-3.0-only is copyleft" in page
    assert '<span class="badge fail">FAIL</span>' in page and "NOT ACCEPTED" in page
    assert 'href="#license">License &amp; dependencies <span class="dot fail">' in page
    for word in ("Accuracy", "Speed", "PR curves", "Gallery", "Sample predictions"):
        assert f">{word}<" not in page
    assert_rendered_cleanly(page)


def test_rich_report_renders_every_section_self_contained(rich, rich_dir):
    path = write_html(rich, rich_dir)
    assert path == rich_dir / HTML_NAME
    page = path.read_text()
    assert sections(page) == list(SECTION_IDS)
    assert_rendered_cleanly(page)
    assert_self_contained(page)
    nav = page.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert all(f'href="#{s}"' in nav for s in SECTION_IDS)
    # charts: AP with CIs, PR curves, per keypoint, errors, latency, stages, robustness curves
    charts = len(re.findall(r'<img src="data:image/png', page))
    gallery = [a for a in rich["artifacts"] if a["kind"] == "gallery"]
    assert charts >= 7 + 1 + 2  # + feature maps + stability renderings (PNG)
    assert len(re.findall(r'<img src="data:image/jpeg', page)) == len(gallery) == 3
    # verdicts: counts in the summary, badges in tables
    assert '<div class="n">1</div><div>checks passed</div>' in page
    assert '<div class="n">4</div><div>checks failed</div>' in page
    assert '<div class="n">1</div><div>checks skipped</div>' in page
    assert page.count('<span class="badge fail">FAIL</span>') >= 4
    # the modules' numbers are on the page
    assert f"{rich['metrics']['keypoints']['AP']:.3f}" in page
    assert f"{rich['baseline']['metrics']['keypoints']['AP']:.3f}" in page  # side by side
    assert "keypoint_head.2.weight" in page and "roi_heads.keypoint_head" in page  # diff
    assert "TRIGGER FOUND" in page and "gaussian_noise" in page and "rPC" in page
    assert "cosine to base" in page and "socket.connect" in page
    # third-party strings are escaped
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;card&lt;/b&gt;" in page
    assert len(page) < 5 * 2**20


def test_gallery_is_worst_first(rich):
    gallery = [a for a in rich["artifacts"] if a["kind"] == "gallery"]
    assert [a["meta"]["rank"] for a in gallery] == [1, 2, 3]
    key = [(a["meta"]["recall"], a["meta"]["mean_oks"]) for a in gallery]
    assert key == sorted(key)
    assert gallery[0]["meta"]["missed"] == 1  # the image whose person came out left/right swapped


def test_missing_and_malformed_pieces_render_without_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path.parent / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    report = {
        "schema": 1,
        "model": {"error": "kpmodel.toml: [model] weights: file not found"},
        "checks": [1, "x", {"marker": "kp_thresholds", "passed": False, "gates": [{"name": "fps"}]}],
        "metrics": {"bbox": {"AP": None, "APs": -1.0}, "keypoints": None, "pr_curves": {"recall": []},
                    "per_keypoint": {"nose": {"ap": None}}, "bootstrap": {"bbox": {"AP": {}}},
                    "keypoint_errors": {"per_keypoint": {}}, "pck": None},
        "bench": [{"batch_size": 1}, "junk", {"latency_ms": {"p50": None}, "stages_ms": {}}],
        "parity": {"rows": [{"variant": "onnx"}, None]},
        "robustness": {"results": {"fog": {"1": {}}, "snow": "x"}, "primary": None},
        "diff": {"components": [{}], "layers": "x", "added": [{}]},
        "security": {"scan": {"path": "w.pt"}, "events": [{}], "extra": {"a": [1, 2]}},
        "card": {"model": None, "claims": {"kp_ap": "high"}},
        "artifacts": [
            {"kind": "gallery", "title": "gone", "path": "images/gone.png"},
            {"kind": "gallery", "title": "text", "path": "images/notes.txt"},
            {"kind": "gallery", "title": "escape", "path": "../secret.png"},
            {"kind": "gallery", "title": "absolute", "path": str(tmp_path.parent / "secret.png")},
            {"kind": "feature_maps", "title": "fm", "path": None, "meta": {"skipped": "ONNX model"}},
            {"kind": "whatever", "title": "odd", "path": 5, "meta": "x"},
            "junk",
        ],
        "warnings": "one warning",
        "environment": ["not", "a", "dict"],
    }  # fmt: skip
    page = render(report, tmp_path)
    assert 'class="render-error"' not in page
    assert "model card could not be read" in page
    assert "images/gone.png: file not found" in page
    assert "images/notes.txt: not a PNG, JPEG, GIF, WebP or SVG image" in page
    assert "../secret.png: outside the report folder" in page
    assert "not a path relative to the report folder" in page
    assert "fm: ONNX model" in page
    assert_self_contained(page)


@pytest.mark.parametrize(
    "section, value",
    [("metrics", "nonsense"), ("bench", 3), ("robustness", [1]), ("diff", [None]),
     ("checks", {"a": 1}), ("artifacts", {"kind": 1}), ("card", 7), ("parity", "x")],
)  # fmt: skip
def test_wrong_types_never_break_the_page(section, value):
    page = render({"schema": 1, "model": {"name": "m"}, section: value})
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    # The renderer turns a section's exception into a note; a wrong type must not get that far.
    assert 'class="render-error"' not in page, re.findall(r'render-error">([^<]*)', page)


def test_schema_notes():
    assert "has no <code>schema</code> field" in render({"model": {}})
    assert "Report schema 99" in render({"schema": 99})
    assert "Report schema" not in render({"schema": 1}) and "schema</code> field" not in render(
        {"schema": 1}
    )
    with pytest.raises(TypeError):
        render([1, 2])  # type: ignore[arg-type]


def test_assets_inline_only_images_inside_the_folder(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 3), (255, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "b.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    assets = Assets(tmp_path)
    uri, why = assets.data_uri("a.png")
    assert uri.startswith("data:image/png;base64,") and why is None
    assert assets.data_uri("b.svg")[0].startswith("data:image/svg+xml;base64,")
    assert assets.data_uri("a.png/../a.png")[0] is not None
    assert assets.data_uri("../x.png") == (None, "../x.png: outside the report folder")
    assert Assets(None).data_uri("a.png")[0] is None
    assert section_of(artifact("feature_maps", "t")) == "provenance"
    assert section_of(artifact("gallery", "t", meta={"section": "robustness"})) == "robustness"
    assert section_of(artifact("mystery", "t")) == "other"


def test_card_section_renders_as_the_model_card(tiny_card):
    from pytest_kpmodel.card import load_card

    card = json.loads(json.dumps(card_section(load_card(tiny_card))))
    assert card["model"]["name"] == "tiny" and card["keypoints"]["names"][0] == "nose"
    page = render({"schema": 1, "model": {"name": "tiny", "sha256": card["model"]["sha256"]},
                   "card": card})  # fmt: skip
    assert sections(page) == ["provenance"]
    assert "weights match" in page and "pytest_kpmodel.zoo:keypointrcnn_compact" in page
    assert "not checked in this run" in page  # no kp_provenance check ran


def test_write_report_for_the_plugin(tmp_path, tiny_card):
    """The session-end call: artifacts and card added, JSON written, HTML rendered from it."""
    from PIL import Image

    from pytest_kpmodel.card import load_card
    from pytest_kpmodel.report.write import write_report

    saved = tmp_path / "stability"
    saved.mkdir()
    Image.new("RGB", (8, 6), (9, 9, 9)).save(saved / "00002.png")

    class CardSession(_Session):
        card = load_card(tiny_card)

    session = CardSession(sections={"robustness": {"stability": [{
        "kind": "gaussian_noise", "perturbation": "Perturbation(kind='gaussian_noise')",
        "per_image": [{"index": 2, "mean_oks": 0.25}], "saved": [str(saved / "00002.png")]}]}})  # fmt: skip
    out = tmp_path / "report"
    json_path, html_path = write_report(session, out)
    report = json.loads(json_path.read_text())
    (art,) = report["artifacts"]
    assert art["kind"] == "robustness" and art["meta"]["mean_oks"] == 0.25
    assert (out / art["path"]).is_file() and art["path"].startswith("images/")
    assert report["card"]["model"]["name"] == "tiny"
    page = html_path.read_text()
    assert sections(page) == ["provenance", "robustness", "run"]
    assert_rendered_cleanly(page)
    assert_self_contained(page)


def test_a_malformed_baseline_does_not_hide_the_model(rich):
    report = dict(rich)
    report["baseline"] = {"model": "x", "metrics": {"pr_curves": {"bbox": None, "keypoints": 3},
                          "per_keypoint": {"nose": None}, "bbox": None, "keypoints": {"AP": "?"},
                          "bootstrap": {"bbox": None}}, "bench": [None, {"latency_ms": 1}]}  # fmt: skip
    page = render(report)
    assert 'class="render-error"' not in page
    assert f"{rich['metrics']['keypoints']['AP']:.3f}" in page
