"""The calculator page in Debian's headless Chromium, driven by Playwright against a real uvicorn server."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from lorabench.web import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _generation(page: sync_api.Page) -> str:
    return page.get_attribute("body", "data-ready") or ""


def _wait_for_result(page: sync_api.Page, after: str) -> None:
    # CSS selectors only: the page's Content-Security-Policy forbids the eval that wait_for_function needs
    page.wait_for_selector(f'body[data-ready]:not([data-ready="{after}"])', state="attached", timeout=90_000)


def test_fill_read_change_gpu_and_share_the_link(base_url: str, tmp_path: Path) -> None:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(base_url + "/")
        _wait_for_result(page, "")  # the default spec is estimated on load

        # fill the form
        page.fill("#model", "llama-3.2-1b")
        page.select_option("#method", "qlora")
        page.fill("#rank", "16")
        page.fill("#seq_len", "1024")
        page.check("#grad_ckpt")
        page.select_option("#precision", "autocast")
        page.select_option("#gpu", "A5000")
        before = _generation(page)
        page.click("#go")
        _wait_for_result(page, before)
        title = page.text_content("#title") or ""
        assert "Llama-3.2-1B" in title and "qlora r16" in title and "4-bit base" in title and "1×A5000" in title
        assert "grad ckpt" in title and "seq 1024" in title and "autocast" in title
        memory = page.text_content("#memory") or ""
        assert "GB" in memory and "fits" in memory
        segments = page.eval_on_selector_all("#bar .seg", "els => els.map(e => e.dataset.component)")
        assert {"weights", "adapter", "activations", "cuda_context"} <= set(segments)
        assert "h" in (page.text_content("#time") or "") and "80% band" in (page.text_content("#time") or "")
        page.wait_for_selector("#cost tbody tr")
        cost = page.text_content("#cost") or ""
        assert "this spec (predicted)" in cost and "checked 20" in cost and "$" in cost
        # a 1B model: the services sized for 70B+ bases are left out, and the page says which
        assert "outside their size bracket" in (page.text_content("#cost_note") or "")

        # change the GPU: the result and the URL follow
        before = _generation(page)
        page.select_option("#gpu", "RTX4090")
        _wait_for_result(page, before)
        assert "1×RTX4090" in (page.text_content("#title") or "")
        assert "on RTX4090" in (page.text_content("#memory") or "")
        page.wait_for_selector('body[data-state="done"]', state="attached", timeout=120_000)
        card = page.text_content('#fits tr[data-gpu="RTX4090"]') or ""
        assert card.startswith("RTX4090") and any(ch.isdigit() for ch in card.split("GB", 1)[1])
        assert "runpod" in (page.text_content("#cost") or "")  # the self-hosted row priced at a catalog rate
        url = page.url
        assert "gpu=RTX4090" in url and "model=llama-3.2-1b" in url and "method=qlora" in url and "grad_ckpt=1" in url
        assert "precision=autocast" in url

        # the link reproduces the state and the result
        shot = Path(os.environ.get("LORABENCH_WEB_SCREENSHOT") or tmp_path / "calculator.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        expected = page.text_content("#title"), page.text_content("#memory"), page.text_content("#params")
        second = browser.new_page()
        second.goto(url)
        _wait_for_result(second, "")
        shown = second.text_content("#title"), second.text_content("#memory"), second.text_content("#params")
        assert shown == expected
        assert second.input_value("#gpu") == "RTX4090" and second.input_value("#rank") == "16"
        assert second.is_checked("#grad_ckpt") and second.input_value("#precision") == "autocast"
        browser.close()
    assert shot.stat().st_size > 10_000
    assert requested and all(u.startswith(base_url) for u in requested), "the page fetched something elsewhere"


def test_pasted_config_and_bad_input(base_url: str) -> None:
    axolotl = "base_model: tiny\nadapter: lora\nlora_r: 4\nsequence_len: 128\nmicro_batch_size: 2\n"
    axolotl += "sample_packing: true\n"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base_url + "/?model=no-such-model")
        page.wait_for_selector('body[data-state="error"]', state="attached", timeout=60_000)
        assert "model: unknown model 'no-such-model'" in (page.text_content("#errors") or "")
        page.fill("#model", "")  # the file names the model (a field the user sets overrides the file's)
        page.click("#upload summary")
        page.fill("#config", axolotl)
        page.click("#go")
        _wait_for_result(page, "")
        title = page.text_content("#title") or ""
        assert title.startswith("tiny") and "lora r4" in title and "batch 2 × seq 128" in title  # the file's values
        notes = page.text_content("#notes") or ""
        assert "axolotl" in notes and "sample_packing" in notes  # what the file said and lorabench did not model
        assert "config=" in page.url
        browser.close()
