"""The rich report in a real browser: headless Chromium, network off, no console errors, no
failed or network requests, every image decoded; a screenshot for people to look at.

How: the test renders the page, then makes a test-only copy with a small inline script (and
``script-src 'unsafe-inline'`` added to the page's CSP) that records uncaught errors,
``console.error`` calls, CSP violations, failed resource loads, resource requests
(``performance.getEntriesByType("resource")``: ``data:`` URIs never appear there) and images
that did not decode, and writes them into the DOM at ``load``; ``chromium --dump-dom`` prints
the DOM and the test reads them back. A second copy with one broken ``http://`` image checks
that the harness does catch such loads. Host resolution is mapped to nothing, so a request
could not reach the network anyway. ``KP_REPORT_SCREENSHOT=path`` also copies the screenshot
there (for looking at it by hand).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_kpmodel.report.html import CSP, write_html

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((b for b in map(shutil.which, BROWSERS) if b), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="Chromium is not installed (apt-get install chromium) for the browser test",
)

PROBE = """<script>
window.__kp = [];
(function () {
  var ce = console.error;
  console.error = function () { __kp.push("console.error: " + Array.prototype.join.call(arguments, " ")); ce.apply(console, arguments); };
})();
window.addEventListener("error", function (e) {
  var t = e.target;
  if (t && t !== window && (t.src || t.href)) { __kp.push("failed load: " + String(t.src || t.href).slice(0, 120)); }
  else { __kp.push("error: " + e.message); }
}, true);
window.addEventListener("unhandledrejection", function (e) { __kp.push("rejection: " + e.reason); });
document.addEventListener("securitypolicyviolation", function (e) { __kp.push("csp: " + e.violatedDirective + " " + e.blockedURI); });
window.addEventListener("load", function () {
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i];
    if (!im.complete || im.naturalWidth === 0) { __kp.push("image not decoded: #" + i + " " + im.alt); }
  }
  performance.getEntriesByType("resource").forEach(function (r) { __kp.push("request: " + r.name.slice(0, 120)); });
  var p = document.createElement("pre");
  p.id = "kp-probe";
  p.textContent = JSON.stringify({errors: __kp, images: document.images.length, sections: document.querySelectorAll("section").length});
  document.body.appendChild(p);
});
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    cmd = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
        '--host-resolver-rules=MAP * ~NOTFOUND', f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def probe(tmp_path: Path, page: str, name: str) -> dict:
    assert CSP in page
    copy = page.replace(CSP, CSP + "; script-src 'unsafe-inline'", 1).replace(
        "<head>", "<head>" + PROBE, 1
    )
    path = tmp_path / f"{name}.html"
    path.write_text(copy)
    done = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", path.as_uri())
    found = re.search(r'<pre id="kp-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe output; rc {done.returncode}; stderr: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_report_in_headless_chromium(rich, rich_dir, tmp_path):
    page = write_html(rich, rich_dir).read_text()

    result = probe(tmp_path, page, "report")
    assert result["errors"] == []
    assert result["images"] >= 12 and result["sections"] == 9

    broken = page.replace("<main>", '<main><img alt="x" src="http://example.invalid/x.png">', 1)
    caught = probe(tmp_path, broken, "control")["errors"]
    assert any("example.invalid" in e for e in caught), caught  # the probe does see bad loads

    shot = tmp_path / "kp-report-screenshot.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000",
                    (rich_dir / "index.html").as_uri())  # fmt: skip
    assert shot.is_file(), done.stderr[-2000:]
    img = Image.open(shot)
    assert img.size == (1280, 4000)
    pixels = np.asarray(img.convert("RGB").resize((64, 200))).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # not a blank page
    target = os.environ.get("KP_REPORT_SCREENSHOT")
    if target:
        shutil.copy(shot, target)
