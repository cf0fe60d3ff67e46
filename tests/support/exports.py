"""Builders of D365-like exports and reference folders for integration and flow tests."""

from __future__ import annotations

import csv
from pathlib import Path

FLAT_HEADERS = [
    "(Do Not Modify) Order Product", "Order ID", "Potential Customer (Order)", "Currency (Order)",
    "Status (Order)", "Line Item Number", "Product ID", "Quantity", "Unit", "Price Per Unit",
    "Extended Amount", "Provision As", "Fulfill Order",
]

PRODUCTS = [
    # product_number, product_name, product_type, provider, provider_sku, recurring, billing_frequency,
    # provisioning_unit, term_duration, min_quantity, max_quantity
    ("M365-BB-M", "Microsoft 365 Business Basic (Monthly)", "CSP", "partner_center", "CFQ7TTC0LH18:0001",
     "true", "Monthly", "Monthly", "P1M", "1", "300"),
    ("M365-BP-A", "Microsoft 365 Business Premium (Annual)", "CSP", "partner_center", "CFQ7TTC0LCHC:0002",
     "true", "Annually", "Annual", "P1Y", "1", "300"),
    ("SUP-STD-M", "Standard Support (Monthly)", "Support Contract", "manual", "", "true", "Monthly", "Monthly",
     "P1M", "", ""),
    ("ONB-SETUP", "Onboarding and Setup (one-time)", "Managed Services", "manual", "", "false", "", "", "", "", ""),
]


def line(order: str, customer: str, product: str, quantity: str, price: str, *, guid: str = "",
         number: int | str = "", state: str = "Active", currency: str = "USD", unit: str = "Monthly",
         extended: str | None = None, provision_as: str = "", fulfill: str = "") -> dict[str, str]:
    """One flat export row; the extended amount is computed exactly unless given."""
    from decimal import Decimal

    amount = extended if extended is not None else str(Decimal(quantity) * Decimal(price))
    return {
        "(Do Not Modify) Order Product": guid, "Order ID": order, "Potential Customer (Order)": customer,
        "Currency (Order)": currency, "Status (Order)": state, "Line Item Number": str(number),
        "Product ID": product, "Quantity": quantity, "Unit": unit, "Price Per Unit": price,
        "Extended Amount": amount, "Provision As": provision_as, "Fulfill Order": fulfill,
    }


def write_flat_csv(path: Path, rows: list[dict[str, str]], *, drop: tuple[str, ...] = ()) -> Path:
    headers = [header for header in FLAT_HEADERS if header not in drop]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=headers, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_reference(folder: Path, mappings: list[tuple[str, str]], products=PRODUCTS) -> Path:
    """A reference folder: the products above and (customer name → tenant) mappings."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "products.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_number", "product_name", "product_type", "provider", "provider_sku", "recurring",
                         "billing_frequency", "provisioning_unit", "term_duration", "min_quantity", "max_quantity"])
        writer.writerows(products)
    with (folder / "provider_accounts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_name", "customer_id", "provider", "provider_customer_id"])
        for name, tenant in mappings:
            writer.writerow([name, "", "partner_center", tenant])
    return folder
