"""report.html in a real browser: headless Chromium renders every table and plot, the price dates and source URLs
are on the page, and the page is not blank.

Needs Debian's ``chromium`` (CI installs ``chromium`` and ``chromium-driver``); skipped with the reason elsewhere.
The page forbids scripts (Content-Security-Policy), so the probe runs in a copy whose policy also allows inline
script; images stay limited to ``data:`` URIs, so a plot that is not embedded would fail to load.

``LORABENCH_SCREENSHOT=FILE`` keeps the test's screenshot; :func:`screenshot` is also how the README's
``results/report/report.png`` of the demo's page was taken (the command is in the README).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lorabench.report.html import CSP

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium chromium-driver)"
    ),
]

PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (i) {
    return {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight};
  });
  var tables = Array.prototype.map.call(document.querySelectorAll("table"), function (t) {
    return {id: t.id, headers: t.tHead.rows[0].cells.length, rows: t.tBodies[0].rows.length};
  });
  var prices = Array.prototype.map.call(document.querySelectorAll("#prices-table tbody tr"), function (r) {
    return Array.prototype.map.call(r.cells, function (c) { return c.innerText; });
  });
  var links = Array.prototype.map.call(document.querySelectorAll("#prices-table a"), function (a) { return a.href; });
  var sections = Array.prototype.map.call(document.querySelectorAll("section.memory-section h3"), function (h) {
    return h.innerText;
  });
  var out = document.createElement("pre");
  out.id = "lorabench-probe";
  out.textContent = JSON.stringify({images: images, tables: tables, prices: prices, links: links, sections: sections});
  document.body.appendChild(out);
});
</script>"""


def browse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def probe(page: Path, tmp_path: Path) -> dict[str, Any]:
    source = page.read_text("utf-8")
    assert CSP in source
    probed = source.replace(CSP, CSP + "; script-src 'unsafe-inline'").replace("</body>", PROBE + "</body>")
    copy = tmp_path / "probe.html"
    copy.write_text(probed, "utf-8")
    done = browse(tmp_path, "--virtual-time-budget=5000", "--dump-dom", copy.as_uri())
    found = re.search(r'<pre id="lorabench-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"Chromium rendered no probe result (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


def screenshot(page: Path, shot: Path, workdir: Path, size: tuple[int, int] = (1200, 2000)) -> Path:
    """Chromium's screenshot of ``page`` (``size`` in CSS pixels) written to ``shot``."""
    done = browse(workdir, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", page.as_uri())
    assert shot.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return shot


def test_report_renders_in_chromium(written: Path, tmp_path: Path) -> None:
    page = written / "report.html"
    seen = probe(page, tmp_path)
    tables = {t["id"]: t for t in seen["tables"]}
    assert tables["cost-table"]["rows"] == 8 and tables["cost-table"]["headers"] == 7
    assert tables["prices-table"]["rows"] == 4 and tables["prices-table"]["headers"] == 8
    assert tables["memory-table"]["rows"] == 7 and tables["memory-table"]["headers"] == 6
    assert tables["memory-table-tiny-cpu"]["rows"] == 1
    assert seen["sections"] == ["Llama-3.1-8B on GPU", "tiny on CPU"]
    # every catalog price shows its date and its source URL, and the URL is a working link
    for row in seen["prices"]:
        assert re.search(r"\d{4}-\d{2}-\d{2}", row[4]), row
        assert row[6].startswith("https://"), row
    assert "https://platform.openai.com/docs/pricing" in seen["links"]
    assert "https://aws.amazon.com/ec2/pricing/on-demand/" in seen["links"]
    assert len(seen["images"]) == 6
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image

    shot = screenshot(page, tmp_path / "report.png", tmp_path)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        pixels = image.convert("L").resize((300, 500))
        histogram = pixels.histogram()
    dark = sum(histogram[:200])  # pixels clearly darker than the white page
    assert dark > 0.02 * 300 * 500, f"screenshot looks blank ({dark} dark pixels of {300 * 500})"
    assert sum(1 for count in histogram if count) > 20  # text, table rules and plot colours, not one flat fill
    keep = os.environ.get("LORABENCH_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
