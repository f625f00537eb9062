"""Sample invoice and credit note PDFs (and PNGs of their pages) from billing.pdf's view model.

    .venv/bin/python docs/sample_invoice.py                 # docs/screenshots/invoice.png
    .venv/bin/python docs/sample_invoice.py --out /tmp/pdfs --locale fr --all-pages

The English invoice's first page is the screenshot in docs/screenshots/invoice.png. Needs
`pdftoppm` (poppler-utils) for the PNGs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from billing.pdf import (  # noqa: E402
    InvoiceDocument,
    PdfLine,
    PdfMetadata,
    PdfParty,
    PdfTax,
    render_invoice_pdf,
)

LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="180" height="44" viewBox="0 0 180 44">'
    b'<rect x="0" y="4" width="36" height="36" rx="8" fill="#1f3a5f"/>'
    b'<path d="M10 30 L18 14 L26 30 Z" fill="#ffffff"/>'
    b'<text x="46" y="30" font-family="Liberation Sans, DejaVu Sans, sans-serif" font-size="22" '
    b'font-weight="bold" fill="#1f3a5f">Demo Org</text></svg>'
)

SELLER = PdfParty(
    name="Demo Org",
    legal_name="Demo Org SAS",
    address_lines=("12 rue de la Paix", "75002 Paris"),
    country="FR",
    tax_id="FR 40 123 456 824",
    email="billing@demo-org.example",
    logo=LOGO,
    logo_content_type="image/svg+xml",
)
CUSTOMER = PdfParty(
    name="Acme",
    legal_name="Acme Corporation Ltd",
    address_lines=("Unit 4, Riverside Business Park", "221 Harbour Road", "Bristol BS1 6XN"),
    country="GB",
    tax_id="GB 123 4567 89",
    email="accounts@acme.example",
)


def sample_invoice(
    locale: str = "en", currency: str = "EUR", status: str = "finalized", lines: int | None = None
) -> InvoiceDocument:
    """A month of usage: base fee, graduated tiers, a filtered charge, a coupon, two taxes."""
    nov, end = date(2026, 11, 1), date(2026, 11, 30)
    fee_lines = [
        PdfLine(
            "Scale plan — monthly subscription",
            49_000,
            units=Decimal(1),
            unit_amount=Decimal("490.00"),
            period_start=nov,
            period_end=end,
        ),
        PdfLine(
            "API calls",
            0,
            sub_description="Tier 1: 0 – 100,000 calls",
            units=Decimal(100000),
            unit_amount=Decimal("0"),
            period_start=nov,
            period_end=end,
        ),
        PdfLine(
            "API calls",
            22_500,
            sub_description="Tier 2: 100,001 – 1,000,000 calls",
            units=Decimal(900000),
            unit_amount=Decimal("0.00025"),
        ),
        PdfLine(
            "API calls",
            4_140,
            sub_description="Tier 3: above 1,000,000 calls",
            units=Decimal(207000),
            unit_amount=Decimal("0.0002"),
        ),
        PdfLine(
            "Storage (GB-month)",
            11_235,
            sub_description="region: eu-west-1",
            units=Decimal("749.0"),
            unit_amount=Decimal("0.15"),
            period_start=nov,
            period_end=end,
        ),
        PdfLine("Premium support", 15_000, units=Decimal(1), unit_amount=Decimal("150.00")),
    ]
    if lines is not None:
        fee_lines = [
            PdfLine(
                f"Seat {i + 1:02d} — analyst licence",
                2_500,
                sub_description="team: research",
                units=Decimal(1),
                unit_amount=Decimal("25.00"),
            )
            for i in range(lines)
        ]
    fees = sum(line.amount_cents for line in fee_lines)
    coupon = 10_000 if lines is None else 0
    subtotal = fees - coupon
    taxes = [
        PdfTax("VAT", Decimal("20"), subtotal * 20 // 100),
        PdfTax("Digital services levy", Decimal("1.5"), subtotal * 15 // 1000),
    ]
    tax_total = sum(t.amount_cents for t in taxes)
    prepaid = 5_000 if lines is None else 0
    total = subtotal + tax_total - prepaid
    return InvoiceDocument(
        kind="invoice",
        number="DEM-1A2B-001-014",
        issuing_date=date(2026, 12, 1),
        due_date=date(2026, 12, 31),
        payment_status="pending",
        status=status,
        currency=currency,
        locale=locale,
        timezone="Europe/Paris",
        seller=SELLER,
        customer=CUSTOMER,
        brand_color="#1f3a5f",
        lines=fee_lines,
        period_start=nov,
        period_end=end,
        subtotal_excluding_taxes_cents=subtotal,
        coupons_cents=coupon,
        taxes=taxes,
        taxes_cents=tax_total,
        prepaid_credit_cents=prepaid,
        total_cents=total,
        total_due_cents=total,
        metadata=[
            PdfMetadata("Purchase order", "PO-2026-0481"),
            PdfMetadata("Contract", "MSA-ACME-2025-07"),
        ],
        net_payment_term_days=30,
        footer="Bank transfer: IBAN FR76 3000 6000 0112 3456 7890 189 · BIC AGRIFRPP\n"
        "Demo Org SAS, share capital €50,000, RCS Paris 123 456 824",
    )


def sample_credit_note(locale: str = "en", currency: str = "EUR") -> InvoiceDocument:
    lines = [
        PdfLine(
            "API calls",
            22_500,
            sub_description="Tier 2: 100,001 – 1,000,000 calls",
            units=Decimal(900000),
            unit_amount=Decimal("0.00025"),
        )
    ]
    taxes = [PdfTax("VAT", Decimal("20"), 4_500)]
    return InvoiceDocument(
        kind="credit_note",
        number="DEM-1A2B-001-014-CN001",
        issuing_date=date(2026, 12, 8),
        currency=currency,
        locale=locale,
        timezone="Europe/Paris",
        seller=SELLER,
        customer=CUSTOMER,
        brand_color="#1f3a5f",
        lines=lines,
        subtotal_excluding_taxes_cents=22_500,
        taxes=taxes,
        taxes_cents=4_500,
        total_cents=27_000,
        credited_invoice_number="DEM-1A2B-001-014",
        reason="duplicated_charge",
        description="API calls of November were counted twice.",
        credit_amount_cents=20_000,
        refund_amount_cents=7_000,
        footer="Demo Org SAS, share capital €50,000, RCS Paris 123 456 824",
    )


def to_png(pdf: bytes, target: Path, all_pages: bool = False) -> list[Path]:
    """Pages of `pdf` as PNGs at 80 dpi (the first page only unless `all_pages`)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "doc.pdf"
        source.write_bytes(pdf)
        args = ["pdftoppm", "-png", "-r", "80"] + ([] if all_pages else ["-singlefile"])
        # noqa reason: a fixed tool name and our own temporary file names, no shell
        subprocess.run([*args, str(source), str(Path(tmp) / "page")], check=True)  # noqa: S603
        pages = sorted(Path(tmp).glob("page*.png"))
        outputs = []
        for index, page in enumerate(pages, start=1):
            out = target if len(pages) == 1 else target.with_name(f"{target.stem}-{index}.png")
            shutil.copyfile(page, out)
            outputs.append(out)
        return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="write every sample here instead of the screenshot"
    )
    parser.add_argument("--locale", default="en")
    parser.add_argument("--currency", default="EUR")
    parser.add_argument("--all-pages", action="store_true")
    args = parser.parse_args()
    if args.out is None:
        target = ROOT / "docs" / "screenshots" / "invoice.png"
        print(to_png(render_invoice_pdf(sample_invoice()), target)[0])
        return
    args.out.mkdir(parents=True, exist_ok=True)
    samples = {
        "invoice": sample_invoice(args.locale, args.currency),
        "draft": sample_invoice(args.locale, args.currency, status="draft"),
        "long": sample_invoice(args.locale, args.currency, lines=40),
        "credit_note": sample_credit_note(args.locale, args.currency),
    }
    for name, doc in samples.items():
        pdf = render_invoice_pdf(doc)
        stem = f"{name}-{args.locale}-{args.currency}"
        (args.out / f"{stem}.pdf").write_bytes(pdf)
        for png in to_png(pdf, args.out / f"{stem}.png", args.all_pages):
            print(png)


if __name__ == "__main__":
    main()
