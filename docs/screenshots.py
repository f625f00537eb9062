"""Regenerate the README's screenshots from the demo data, in Debian's Chromium.

    .venv/bin/python docs/screenshots.py        (or: make screenshots)

Uses a throwaway SQLite database seeded like `make run`, served on a free local port.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from billing.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, seed_demo  # noqa: E402
from billing.demo_portal import demo_portal_url  # noqa: E402
from extensions import db  # noqa: E402

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/demo.db", "SECRET_KEY": "x"})
        with app.app_context():
            upgrade()
            seed_demo()
            db.session.commit()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        with app.app_context():
            portal_url = demo_portal_url(base, "x")
        OUT.mkdir(exist_ok=True)
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                f"{tmp}/chromium", executable_path="/usr/bin/chromium", headless=True,
                viewport={"width": 1360, "height": 820}, args=CHROMIUM_ARGS,
            )  # fmt: skip
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill("#email", DEMO_ADMIN_EMAIL)
            page.fill("#password", DEMO_ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/customers")
            page.screenshot(path=str(OUT / "customers.png"))
            page.goto(f"{base}/customers?q=acme")
            page.click("text=Acme Corporation")
            page.wait_for_selector("#customer-tab")
            page.screenshot(path=str(OUT / "customer.png"))
            page.click("nav.tabs >> text=Subscriptions & usage")
            page.wait_for_selector(".usage-chart")
            page.screenshot(path=str(OUT / "subscriptions.png"), full_page=True)
            page.goto(f"{base}/plans")
            page.click("text=Growth >> nth=0")
            page.wait_for_load_state()
            page.screenshot(path=str(OUT / "plan.png"), full_page=True)
            page.goto(f"{base}/audit")
            page.screenshot(path=str(OUT / "audit.png"))
            page.goto(f"{base}/finance")
            page.screenshot(path=str(OUT / "finance.png"), full_page=True)
            page.goto(f"{base}/settings/webhooks")
            page.screenshot(path=str(OUT / "webhooks.png"), full_page=True)
            if portal_url:
                page.goto(portal_url)
                page.screenshot(path=str(OUT / "portal.png"), full_page=True)
                page.set_viewport_size({"width": 360, "height": 740})
                page.goto(portal_url + "invoices")
                page.screenshot(path=str(OUT / "portal-narrow.png"), full_page=True)
            context.close()
        server.shutdown()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
