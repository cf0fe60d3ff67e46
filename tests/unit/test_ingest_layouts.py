"""Reading order files end to end (SPEC §2.1): encodings, D365 quirks, layouts, the join."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from schemas.sales_orders import NormalisedLines
from w365etl.amounts import MONEY_DTYPE, QUANTITY_DTYPE
from w365etl.adapters.order_files import read_order_files
from w365etl.ingest import IngestResult, issues_per_line
from w365etl.ingest.result import FILE_ISSUE_COLUMNS, ISSUE_COLUMNS, LINE_COLUMNS

GUID_1 = "AB6A0BBB-2B76-EF11-A671-000D3A8F0001"
GUID_2 = "AB6A0BBB-2B76-EF11-A671-000D3A8F0002"
ORDER_GUID_1 = "CD6A0BBB-2B76-EF11-A671-000D3A8F1001"
ORDER_GUID_2 = "CD6A0BBB-2B76-EF11-A671-000D3A8F1002"

FLAT_CSV = """\
Order ID,Customer,Currency,Status,Product ID,Quantity,Price Per Unit
SO-1,Contoso,USD,Active,CFQ7TTC0LH18,3,"$1,299.00"
SO-1,Contoso,USD,Active,SUPPORT-1,1,250
SO-2,Fabrikam Inc.,EUR,Submitted,CFQ7TTC0LH18,10,12.5
"""


def write(tmp_path: Path, name: str, content: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    return path


def workbook(path: Path, sheets: dict[str, list[list[object]]], hidden: tuple[str, ...] = ()) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if title in hidden:
            sheet.sheet_state = "hidden"
    book.save(path)
    return path


def line(result: IngestResult, index: int) -> dict[str, object]:
    return result.lines.iloc[index].to_dict()


# --------------------------------------------------------------------------------------------
# the output contract


def test_output_contract_columns_and_dtypes(tmp_path: Path) -> None:
    result = read_order_files([write(tmp_path, "flat.csv", FLAT_CSV)])
    lines = result.lines
    assert tuple(lines.columns) == LINE_COLUMNS
    assert isinstance(lines.index, pd.RangeIndex)
    assert lines["line_index"].tolist() == [0, 1, 2]
    assert lines["line_index"].dtype == "int64" and lines["row_number"].dtype == "int64"
    assert lines["quantity"].dtype == QUANTITY_DTYPE
    assert lines["price_per_unit"].dtype == MONEY_DTYPE
    assert lines["order_state_code"].dtype == "Int64"
    assert lines["fulfill_order"].dtype == "boolean"
    assert lines["customer_name"].dtype == "str"
    assert lines["unit"].isna().all()  # a field absent from the file is NA of its dtype
    NormalisedLines.validate(lines)
    assert tuple(result.issues.columns) == ISSUE_COLUMNS
    assert tuple(result.file_issues.columns) == FILE_ISSUE_COLUMNS


def test_flat_csv_lines_and_provenance(tmp_path: Path) -> None:
    path = write(tmp_path, "flat.csv", FLAT_CSV)
    result = read_order_files([path])
    first = line(result, 0)
    assert first["file_path"] == str(path)
    assert pd.isna(first["sheet_name"])
    assert first["row_number"] == 2
    assert first["order_row_number"] == 2 and first["order_file_path"] == str(path)
    assert first["layout"] == "flat" and first["dialect"] == "display"
    assert first["order_number"] == "SO-1" and first["currency_code"] == "USD"
    assert first["price_per_unit"] == Decimal("1299")
    assert result.lines["order_state_code"].tolist() == [0, 0, 1]
    record = result.files[0]
    assert record.status == "read" and record.layout == "flat" and record.rows == 3
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.headers[str(path)]["order_number"] == "Order ID"
    assert result.issues.empty and result.file_issues.empty


def test_blank_rows_are_skipped_and_row_numbers_stay_those_a_person_sees(tmp_path: Path) -> None:
    content = FLAT_CSV.replace("SO-1,Contoso,USD,Active,SUPPORT-1", "\n,,,,,,\nSO-1,Contoso,USD,Active,SUPPORT-1")
    result = read_order_files([write(tmp_path, "gaps.csv", content)])
    assert result.lines["row_number"].tolist() == [2, 5, 6]
    assert result.files[0].rows == 3


def test_bad_cell_is_an_issue_naming_column_value_and_row(tmp_path: Path) -> None:
    content = FLAT_CSV.replace('"$1,299.00"', '"1.299,00"')
    result = read_order_files([write(tmp_path, "bad.csv", content)])
    assert len(result.lines) == 3  # the line stays, with NA in the bad field
    assert pd.isna(result.lines.loc[0, "price_per_unit"])
    issue = result.issues.iloc[0].to_dict()
    assert issue["reason_code"] == "INVALID_VALUE"
    assert issue["field"] == "price_per_unit"
    assert issue["line_index"] == 0 and issue["row"] == 2
    assert issue["column"] == "Price Per Unit" and issue["value"] == "1.299,00"
    assert issue["message"] == "Price Per Unit '1.299,00' is not a number in the en-US format (1,299.00)"


def test_unknown_columns_are_ignored_and_listed(tmp_path: Path) -> None:
    content = FLAT_CSV.replace("Price Per Unit\n", "Price Per Unit,Sales Rep\n")
    result = read_order_files([write(tmp_path, "extra.csv", content)])
    assert result.files[0].unknown_columns == ["Sales Rep"]
    assert result.file_issues.empty


# --------------------------------------------------------------------------------------------
# encodings and delimiters


def test_semicolon_csv_in_de_de(tmp_path: Path) -> None:
    content = (
        "Order ID;Customer;Currency;Status;Product ID;Quantity;Price Per Unit\n"
        "SO-1;Contoso GmbH;EUR;Active;P1;1,5;1.299,00 €\n"
    )
    result = read_order_files([write(tmp_path, "semi.csv", content)], number_locale="de-DE")
    assert line(result, 0)["quantity"] == Decimal("1.5")
    assert line(result, 0)["price_per_unit"] == Decimal("1299")
    assert result.issues.empty


def test_cp1252_csv_with_euro_sign(tmp_path: Path) -> None:
    content = (
        "Order ID;Customer;Currency;Status;Product ID;Quantity;Price Per Unit\n"
        "SO-1;Société Générale;EUR;Active;P1;2;1.299,50 €\n"
    )
    path = write(tmp_path, "cp1252.csv", content, encoding="cp1252")
    result = read_order_files([path], number_locale="de-DE")
    assert line(result, 0)["customer_name"] == "Société Générale"
    assert line(result, 0)["price_per_unit"] == Decimal("1299.5")


def test_utf8_bom_does_not_hide_the_first_header(tmp_path: Path) -> None:
    result = read_order_files([write(tmp_path, "bom.csv", FLAT_CSV, encoding="utf-8-sig")])
    assert result.lines["order_number"].tolist() == ["SO-1", "SO-1", "SO-2"]
    assert result.headers[str(tmp_path / "bom.csv")]["order_number"] == "Order ID"


def test_utf16_with_bom_is_read(tmp_path: Path) -> None:
    result = read_order_files([write(tmp_path, "utf16.csv", FLAT_CSV, encoding="utf-16")])
    assert len(result.lines) == 3
    assert result.files[0].status == "read"


def test_quoted_cells_with_commas_and_newlines(tmp_path: Path) -> None:
    content = FLAT_CSV.replace("Fabrikam Inc.", '"Fabrikam, Inc."')
    result = read_order_files([write(tmp_path, "quoted.csv", content)])
    assert line(result, 2)["customer_name"] == "Fabrikam, Inc."


# --------------------------------------------------------------------------------------------
# D365 "Export to Excel"


D365_HEADERS = [
    "(Do Not Modify) Order Product",
    "(Do Not Modify) Row Checksum",
    "(Do Not Modify) Modified On",
    "Order ID (Order)",
    "Customer (Order)",
    "Currency (Order)",
    "Status (Order)",
    "Status Reason (Order)",
    "Payment Terms (Order)",
    "Existing Product",
    "Quantity",
    "Unit",
    "Price Per Unit",
    "Extended Amount",
    "Line Item Number",
    "Fulfill Order",
    "Owner",
]


def d365_export(path: Path) -> Path:
    modified = dt.datetime(2026, 11, 28, 17, 5)
    rows = [
        D365_HEADERS,
        ["{" + GUID_1 + "}", "a1b2==", modified, "ORD-01001", "Contoso", "US Dollar", "Active", "New", "Net 30",
         "Microsoft 365 E3", 25, "Monthly", "$36.00", 900, 1, "Yes", "Alex"],
        [None] * len(D365_HEADERS),
        ["{" + GUID_2 + "}", "c3d4==", modified, "ORD-01001", "Contoso", "US Dollar", "0", "1", "2",
         "Premier Support", 0.5, "Each", 1299.99, "$649.995", 2, "No", "Alex"],
    ]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Order Products"
    for row in rows:
        sheet.append(row)
    for column in "ABC":
        sheet.column_dimensions[column].hidden = True
    hidden = book.create_sheet("hiddenSheet")
    hidden.sheet_state = "hidden"
    hidden.append(["salesorderdetail", "Quantity", "Price Per Unit", "Order ID", "Customer"])
    hidden.append(["metadata", "1", "2", "3", "4"])
    book.create_sheet("Empty")
    book.save(path)
    return path


def test_d365_export_to_excel_just_works(tmp_path: Path) -> None:
    path = d365_export(tmp_path / "Order Products 2026-11-29.xlsx")
    result = read_order_files([path])
    assert result.file_issues.empty
    assert result.issues.empty, result.issues.to_dict("records")
    lines = result.lines
    assert len(lines) == 2  # the hidden sheet is not read
    assert lines["line_id"].tolist() == [GUID_1.lower(), GUID_2.lower()]
    assert lines["row_number"].tolist() == [2, 4]
    assert lines["sheet_name"].tolist() == ["Order Products"] * 2
    assert lines["order_state_code"].tolist() == [0, 0]
    assert lines["order_status_reason_code"].tolist() == [1, 1]
    assert lines["payment_terms"].tolist() == ["Net 30", "2% 10, Net 30"]
    assert lines["currency_code"].tolist() == ["USD", "USD"]
    assert lines["product_name"].tolist() == ["Microsoft 365 E3", "Premier Support"]
    assert [Decimal(q) for q in lines["quantity"]] == [Decimal("25"), Decimal("0.5")]
    assert [Decimal(p) for p in lines["price_per_unit"]] == [Decimal("36"), Decimal("1299.99")]
    assert [Decimal(p) for p in lines["extended_amount"]] == [Decimal("900"), Decimal("649.995")]
    assert lines["fulfill_order"].tolist() == [True, False]
    assert lines["unit"].tolist() == ["Monthly", "Each"]
    record = result.files[0]
    assert record.sheets == ["Order Products"]
    assert record.unknown_columns == ["Owner"]
    assert record.dialect == "display" and record.layout == "flat"
    assert result.headers[f"{path}#Order Products"]["order_state"] == "Status (Order)"


def test_excel_numbers_follow_the_locale_decimal_mark(tmp_path: Path) -> None:
    path = d365_export(tmp_path / "export.xlsx")
    result = read_order_files([path], number_locale="de-DE")
    # 1299.99 and 0.5 were Excel numbers: exact whatever the locale
    assert result.lines.loc[1, "price_per_unit"] == Decimal("1299.99")
    assert result.lines.loc[1, "quantity"] == Decimal("0.5")
    # text cells are read in the configured locale, never guessed: "$36.00" does not fit
    # de-DE, and "$649.995" is six hundred forty-nine thousand nine hundred ninety-five
    assert result.issues[["column", "value"]].values.tolist() == [["Price Per Unit", "$36.00"]]
    assert result.lines.loc[1, "extended_amount"] == Decimal("649995")


def test_unrelated_sheet_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "book.xlsx",
        {
            "Notes": [["Prepared by", "Date"], ["Alex", "2026-11-29"]],
            "Lines": [FLAT_CSV.splitlines()[0].split(","), ["SO-1", "Contoso", "USD", "Active", "P1", 1, 10]],
        },
    )
    result = read_order_files([path])
    assert len(result.lines) == 1
    assert result.files[0].sheets == ["Lines"]
    assert any("Notes" in warning for warning in result.warnings)


# --------------------------------------------------------------------------------------------
# header + lines


ORDERS_ROWS = [
    ["(Do Not Modify) Order", "Order ID", "Customer", "Currency", "Status", "Payment Terms"],
    ["{" + ORDER_GUID_1 + "}", "SO-1", "Contoso", "Euro", "Submitted", "Net 45"],
    ["{" + ORDER_GUID_2 + "}", "SO-2", "Fabrikam", "USD", "Active", "Net 99"],
]
LINES_ROWS = [
    ["(Do Not Modify) Order", "Order ID", "Product ID", "Quantity", "Price Per Unit"],
    ["{" + ORDER_GUID_1 + "}", "SO-1", "P1", 2, 10],
    ["{" + ORDER_GUID_1 + "}", "SO-1", "P2", 1, 20],
    ["{" + ORDER_GUID_2 + "}", "SO-2", "P1", 5, 10],
]


def test_two_sheet_workbook_joins_lines_with_their_orders(tmp_path: Path) -> None:
    path = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": LINES_ROWS})
    result = read_order_files([path])
    lines = result.lines
    assert lines["layout"].tolist() == ["header_lines"] * 3
    assert lines["customer_name"].tolist() == ["Contoso", "Contoso", "Fabrikam"]
    assert lines["currency_code"].tolist() == ["EUR", "EUR", "USD"]
    assert lines["order_state_code"].tolist() == [1, 1, 0]
    assert lines["sheet_name"].tolist() == ["Order Lines"] * 3
    assert lines["order_sheet_name"].tolist() == ["Orders"] * 3
    assert lines["order_row_number"].tolist() == [2, 2, 3]
    assert lines["row_number"].tolist() == [2, 3, 4]
    assert lines["order_table_key"].tolist() == [f"{path}#Orders"] * 3
    assert result.files[0].layout == "header_lines" and result.files[0].rows == 3
    assert result.files[0].sheets == ["Orders", "Order Lines"]


def test_an_orders_row_problem_is_reported_once_on_the_orders_row(tmp_path: Path) -> None:
    path = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": LINES_ROWS})
    result = read_order_files([path])
    issue = result.issues.iloc[0].to_dict()
    assert len(result.issues) == 1
    assert pd.isna(issue["line_index"])
    assert (issue["field"], issue["sheet"], issue["row"], issue["value"]) == ("payment_terms", "Orders", 3, "Net 99")
    assert pd.isna(result.lines.loc[2, "payment_terms"])
    expanded = issues_per_line(result)
    assert expanded["line_index"].tolist() == [2]


def test_a_line_whose_order_is_missing_is_invalid_value_on_order_number(tmp_path: Path) -> None:
    lines_rows = LINES_ROWS[:2] + [["{" + GUID_1 + "}", "SO-9", "P3", 1, 1]]
    path = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": lines_rows})
    result = read_order_files([path])
    orphan = result.issues[result.issues["line_index"] == 1].iloc[0].to_dict()
    assert orphan["reason_code"] == "INVALID_VALUE"
    assert orphan["field"] == "order_number"
    assert orphan["row"] == 3 and orphan["value"] == "SO-9" and orphan["column"] == "Order ID"
    assert "SO-9" in orphan["message"] and "no order" in orphan["message"]
    assert result.lines.loc[1, "order_number"] == "SO-9"  # the line keeps its own order number


def test_an_order_with_no_lines_is_ignored_with_a_warning(tmp_path: Path) -> None:
    path = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": LINES_ROWS[:3]})
    result = read_order_files([path])
    assert set(result.lines["order_number"]) == {"SO-1"}
    assert any("SO-2" in warning and "no lines" in warning for warning in result.warnings)
    # its bad payment terms are not reported: the order is ignored, not counted
    assert result.issues.empty


def test_join_is_on_order_id_when_both_tables_have_it(tmp_path: Path) -> None:
    # the lines' order numbers are stale, the GUIDs are right: the GUID decides
    lines_rows = [LINES_ROWS[0]] + [[row[0], "OLD", *row[2:]] for row in LINES_ROWS[1:]]
    path = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": lines_rows})
    result = read_order_files([path])
    assert result.lines["order_number"].tolist() == ["SO-1", "SO-1", "SO-2"]
    assert result.lines["order_id"].tolist() == [ORDER_GUID_1.lower()] * 2 + [ORDER_GUID_2.lower()]


def test_join_is_on_order_number_when_a_table_has_no_order_id(tmp_path: Path) -> None:
    lines_rows = [row[1:] for row in LINES_ROWS]
    path = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": lines_rows})
    result = read_order_files([path])
    assert result.lines["customer_name"].tolist() == ["Contoso", "Contoso", "Fabrikam"]
    assert result.lines["order_id"].tolist() == [ORDER_GUID_1.lower()] * 2 + [ORDER_GUID_2.lower()]


def test_two_files_given_in_the_same_run_are_header_and_lines(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", "Order Number,Customer,Currency,Status\nSO-1,Contoso,USD,Active\n")
    lines = write(tmp_path, "lines.csv", "Order Number,Product Name,Quantity,Price Per Unit\nSO-1,E3,2,36\nSO-1,E5,1,57\n")
    result = read_order_files([lines, orders])
    assert result.lines["customer_name"].tolist() == ["Contoso", "Contoso"]
    assert result.lines["order_file_path"].tolist() == [str(orders)] * 2
    assert result.lines["file_path"].tolist() == [str(lines)] * 2
    by_path = {record.path: record for record in result.files}
    assert by_path[str(orders)].layout == "header_lines" and by_path[str(orders)].rows == 1
    assert by_path[str(lines)].layout == "header_lines" and by_path[str(lines)].rows == 2
    assert result.file_issues.empty


def test_logical_name_csv_pair(tmp_path: Path) -> None:
    orders = write(
        tmp_path,
        "salesorders.csv",
        "salesorderid,ordernumber,customeridname,isocurrencycode,statecode,statuscode\n"
        f"{ORDER_GUID_1},SO-1,Contoso,usd,0,1\n",
    )
    lines = write(
        tmp_path,
        "salesorderdetails.csv",
        "salesorderdetailid,_salesorderid_value,productnumber,quantity,priceperunit,extendedamount\n"
        f"{GUID_1},{ORDER_GUID_1.lower()},CFQ7TTC0LH18,3,36.00,108.00\n",
    )
    result = read_order_files([orders, lines])
    row = line(result, 0)
    assert row["dialect"] == "logical" and row["layout"] == "header_lines"
    assert row["order_number"] == "SO-1" and row["currency_code"] == "USD"
    assert row["order_status_reason_code"] == 1
    assert row["line_id"] == GUID_1.lower()
    assert all(record.dialect == "logical" for record in result.files)


def test_required_columns_are_checked_on_the_union_after_the_join(tmp_path: Path) -> None:
    # neither table alone has every required column; together they do
    orders = write(tmp_path, "orders.csv", "Order Number,Customer,Currency,Status\nSO-1,Contoso,USD,Active\n")
    lines = write(tmp_path, "lines.csv", "Order Number,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\n")
    result = read_order_files([orders, lines])
    assert result.file_issues.empty and len(result.lines) == 1


def test_an_orders_file_alone_is_missing_its_quantity(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", "Order Number,Customer,Currency,Status\nSO-1,Contoso,USD,Active\n")
    result = read_order_files([orders])
    assert result.file_issues["reason_code"].tolist() == ["MISSING_COLUMN"]
    assert "Quantity" in result.file_issues.loc[0, "message"]
    assert result.lines.empty


# --------------------------------------------------------------------------------------------
# rejected files


def test_ambiguous_column_rejects_the_file_and_not_the_others(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", FLAT_CSV.replace("Product ID", "Product ID,Product Number").replace(
        "CFQ7TTC0LH18,", "CFQ7TTC0LH18,X,").replace("SUPPORT-1,", "SUPPORT-1,Y,"))
    good = write(tmp_path, "good.csv", FLAT_CSV)
    result = read_order_files([bad, good])
    issue = result.file_issues.iloc[0].to_dict()
    assert len(result.file_issues) == 1
    assert issue["reason_code"] == "AMBIGUOUS_COLUMN" and issue["file"] == str(bad)
    assert "Product ID" in issue["message"] and "Product Number" in issue["message"]
    assert set(result.lines["file_path"]) == {str(good)}
    assert [record.status for record in result.files] == ["rejected", "read"]
    assert result.files[0].error == issue["message"]


def test_missing_column_names_the_column_and_the_accepted_spellings(tmp_path: Path) -> None:
    content = "Order ID,Customer,Status,Product ID,Quantity,Price Per Unit\nSO-1,Contoso,Active,P1,1,1\n"
    path = write(tmp_path, "nocurrency.csv", content)
    result = read_order_files([path])
    issue = result.file_issues.iloc[0].to_dict()
    assert issue["reason_code"] == "MISSING_COLUMN"
    assert issue["column"] == "Currency"
    assert "'Currency'" in issue["message"] and "isocurrencycode" in issue["message"]
    assert result.lines.empty and result.files[0].status == "rejected"


def test_missing_product_column_names_both_spellings(tmp_path: Path) -> None:
    path = write(tmp_path, "noproduct.csv", "Order ID,Customer,Currency,Status,Quantity,Price Per Unit\nSO-1,C,USD,Active,1,1\n")
    result = read_order_files([path])
    message = result.file_issues.loc[0, "message"]
    assert "Product ID" in message and "Product Name" in message


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("notazip.xlsx", b"Order ID,Quantity\nSO-1,1\n", "not a zip"),
        ("empty.csv", b"", "empty"),
        ("blank.csv", b"\n\n  \n", "empty"),
        ("binary.csv", b"\x81\x8d\x8f\x90\x9d" * 20, "neither UTF-8 nor cp1252"),
        ("legacy.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
        # a ragged row is a row-level problem now (tests/corpus: ragged_*.csv); a quote never closed is not
        ("unclosed.csv", b'Order ID,Quantity\n"SO-1,1\n', "never closed"),
    ],
)
def test_unreadable_files_are_rejected_with_one_clear_line(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = read_order_files([path, write(tmp_path, "good.csv", FLAT_CSV)])
    issue = result.file_issues.iloc[0].to_dict()
    assert issue["reason_code"] == "FILE_REJECTED"
    assert words.lower() in issue["message"].lower()
    assert "\n" not in issue["message"] and "Traceback" not in issue["message"]
    assert len(result.lines) == 3  # the good file is still read


def test_truncated_xlsx_is_rejected(tmp_path: Path) -> None:
    full = d365_export(tmp_path / "full.xlsx").read_bytes()
    path = tmp_path / "truncated.xlsx"
    path.write_bytes(full[: len(full) // 2])
    result = read_order_files([path])
    assert result.file_issues["reason_code"].tolist() == ["FILE_REJECTED"]
    assert result.files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_path_that_does_not_exist_is_rejected(tmp_path: Path) -> None:
    result = read_order_files([tmp_path / "nope.csv"])
    assert result.file_issues["reason_code"].tolist() == ["FILE_REJECTED"]
    assert result.files[0].sha256 is None and result.files[0].status == "rejected"


def test_a_workbook_with_only_unrelated_sheets_is_rejected(tmp_path: Path) -> None:
    path = workbook(tmp_path / "notes.xlsx", {"Notes": [["a", "b"], [1, 2]]})
    result = read_order_files([path])
    assert result.file_issues["reason_code"].tolist() == ["FILE_REJECTED"]


# --------------------------------------------------------------------------------------------
# more join cases


def test_every_lines_sheet_of_a_workbook_joins_with_its_orders_sheet(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "two-lines.xlsx",
        {"Orders": ORDERS_ROWS, "Lines A": LINES_ROWS[:2], "Lines B": [LINES_ROWS[0], LINES_ROWS[3]]},
    )
    result = read_order_files([str(path)])  # a path given as text works too
    assert result.lines["sheet_name"].tolist() == ["Lines A", "Lines B"]
    assert result.lines["customer_name"].tolist() == ["Contoso", "Fabrikam"]
    assert result.lines["line_index"].tolist() == [0, 1]
    assert not result.warnings


def test_a_workbook_with_its_own_orders_sheet_ignores_standalone_orders_files(tmp_path: Path) -> None:
    standalone = write(tmp_path, "orders.csv", "Order ID,Customer,Currency,Status\nSO-1,Someone Else,GBP,Active\n")
    loose = write(tmp_path, "lines.csv", "Order ID,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\n")
    book = workbook(tmp_path / "book.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": LINES_ROWS})
    result = read_order_files([standalone, loose, book])
    from_book = result.lines[result.lines["file_path"] == str(book)]
    from_csv = result.lines[result.lines["file_path"] == str(loose)]
    assert from_book["customer_name"].tolist() == ["Contoso", "Contoso", "Fabrikam"]
    assert from_csv["customer_name"].tolist() == ["Someone Else"]


def test_line_fields_fall_back_to_the_orders_table_when_only_it_has_them(tmp_path: Path) -> None:
    orders = write(
        tmp_path, "orders.csv", "Order ID,Customer,Currency,Status,Fulfill Order\nSO-1,Contoso,USD,Active,No\n"
    )
    lines = write(tmp_path, "lines.csv", "Order ID,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\nSO-1,E5,1,1\n")
    result = read_order_files([orders, lines])
    assert result.lines["fulfill_order"].tolist() == [False, False]


def test_a_repeated_order_uses_its_first_row_and_warns(tmp_path: Path) -> None:
    orders = write(
        tmp_path,
        "orders.csv",
        "Order ID,Customer,Currency,Status\nSO-1,Contoso,USD,Active\nSO-1,Contoso Copy,USD,Active\n",
    )
    lines = write(tmp_path, "lines.csv", "Order ID,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\n")
    result = read_order_files([orders, lines])
    assert result.lines["customer_name"].tolist() == ["Contoso"]
    assert result.lines["order_row_number"].tolist() == [2]
    assert any("more than once" in warning for warning in result.warnings)


def test_orders_row_issue_from_a_csv_expands_to_each_line(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", "Order ID,Customer,Currency,Status\nSO-1,Contoso,Dollar,Active\n")
    lines = write(tmp_path, "lines.csv", "Order ID,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\nSO-1,E5,1,1\n")
    result = read_order_files([orders, lines])
    assert len(result.issues) == 1
    issue = result.issues.iloc[0]
    assert pd.isna(issue["line_index"]) and pd.isna(issue["sheet"])
    assert (issue["file"], issue["row"], issue["column"], issue["value"]) == (str(orders), 2, "Currency", "Dollar")
    expanded = issues_per_line(result)
    assert expanded["line_index"].tolist() == [0, 1]
    assert set(expanded["file"]) == {str(orders)}


def test_a_blank_order_number_on_a_line_cannot_be_matched(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", "Order ID,Customer,Currency,Status\nSO-1,Contoso,USD,Active\n")
    lines = write(tmp_path, "lines.csv", "Order ID,Product,Quantity,Price Per Unit\n,E3,1,1\n")
    result = read_order_files([orders, lines])
    issue = result.issues.iloc[0]
    assert (issue["reason_code"], issue["field"], issue["line_index"]) == ("INVALID_VALUE", "order_number", 0)
    assert "blank" in issue["message"]


def test_a_csv_with_blank_lines_before_its_header_counts_rows_from_the_top(tmp_path: Path) -> None:
    result = read_order_files([write(tmp_path, "late.csv", "\n\n" + FLAT_CSV)])
    assert result.lines["row_number"].tolist() == [4, 5, 6]


def test_an_xlsx_orders_only_workbook_is_a_standalone_orders_file(tmp_path: Path) -> None:
    book = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS})
    lines = write(
        tmp_path, "lines.csv", f"(Do Not Modify) Order,Product,Quantity,Price Per Unit\n{ORDER_GUID_2.lower()},E3,1,1\n"
    )
    result = read_order_files([lines, book])
    assert result.lines["order_number"].tolist() == ["SO-2"]
    assert result.lines["order_sheet_name"].tolist() == ["Orders"]
    # SO-1 has no lines: ignored with a warning
    assert any("SO-1" in warning for warning in result.warnings)
    # SO-2's bad payment terms are reported on its orders row
    assert result.issues[["field", "sheet", "row"]].values.tolist() == [["payment_terms", "Orders", 3]]


def test_a_flat_export_beside_an_orders_lines_pair_stays_flat(tmp_path: Path) -> None:
    """SPEC §2.1: layouts come from the headers; a flat file carries its own order columns."""
    flat = write(tmp_path, "flat.csv", FLAT_CSV)
    orders = write(tmp_path, "orders.csv", "ordernumber,customeridname,isocurrencycode,statecode\nSO-9,Litware,USD,0\n")
    lines = write(tmp_path, "lines.csv", "ordernumber,productnumber,quantity,priceperunit\nSO-9,CFQ7TTC0LH18,2,6\n")
    result = read_order_files([flat, orders, lines])
    layouts = {Path(record.path).name: record.layout for record in result.files}
    assert layouts == {"flat.csv": "flat", "orders.csv": "header_lines", "lines.csv": "header_lines"}
    assert result.issues.empty
    assert sorted(result.lines["order_number"]) == ["SO-1", "SO-1", "SO-2", "SO-9"]
    assert result.lines.loc[result.lines["order_number"] == "SO-9", "customer_name"].tolist() == ["Litware"]


def test_an_unrelated_csv_beside_a_flat_export_is_rejected_not_read(tmp_path: Path) -> None:
    """SPEC §2.1: a table without a required field is rejected whole (MISSING_COLUMN) — whatever
    else the run holds: with no order key it cannot be the orders table of anything."""
    flat = write(tmp_path, "flat.csv", FLAT_CSV)
    unrelated = write(tmp_path, "unrelated.csv", "foo,bar\n1,2\n")
    result = read_order_files([flat, unrelated])
    by_path = {Path(record.path).name: record for record in result.files}
    assert by_path["flat.csv"].status == "read" and by_path["unrelated.csv"].status == "rejected"
    assert result.file_issues["reason_code"].tolist() == ["MISSING_COLUMN"]
    assert result.file_issues.loc[0, "file"] == str(unrelated)
    assert "Order" in result.file_issues.loc[0, "message"]
    assert len(result.lines) == 3 and result.issues.empty
    # given alone, the same file is rejected the same way
    alone = read_order_files([unrelated])
    assert alone.file_issues["reason_code"].tolist() == ["MISSING_COLUMN"]


def test_an_orders_file_without_an_order_key_does_not_join_with_a_lines_file(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", "Customer,Currency,Status\nContoso,USD,Active\n")
    lines = write(tmp_path, "lines.csv", "Order Number,Product,Quantity,Price Per Unit\nSO-1,E3,1,1\n")
    result = read_order_files([orders, lines])
    assert sorted(result.file_issues["file"]) == sorted([str(orders), str(lines)])
    assert set(result.file_issues["reason_code"]) == {"MISSING_COLUMN"}
    assert result.lines.empty


def test_a_summary_sheet_beside_a_flat_sheet_is_skipped_not_joined(tmp_path: Path) -> None:
    """SPEC §2.1: unrelated sheets are skipped — a sheet with order-like headers but no
    Quantity and no order key (a summary, a pivot) is not an orders table."""
    path = workbook(tmp_path / "book.xlsx", {
        "Order Products": [FLAT_CSV.splitlines()[0].split(","), ["SO-1", "Contoso", "USD", "Active", "P1", 1, 10]],
        "Summary": [["Customer", "Currency", "Status", "Total Amount"], ["Contoso", "USD", "Active", 10]],
    })
    result = read_order_files([path])
    assert result.file_issues.empty
    assert result.files[0].status == "read" and result.files[0].layout == "flat"
    assert result.files[0].sheets == ["Order Products"]
    assert len(result.lines) == 1 and result.lines.loc[0, "customer_name"] == "Contoso"
    assert any("Summary" in warning and "skipped" in warning for warning in result.warnings)


def test_an_orders_sheet_with_an_order_key_still_joins_its_lines_sheet(tmp_path: Path) -> None:
    # the skip above is for keyless sheets only: a real orders sheet still joins
    path = workbook(tmp_path / "orders.xlsx", {"Orders": ORDERS_ROWS, "Order Lines": LINES_ROWS,
                                               "Summary": [["Customer", "Currency", "Status"], ["Contoso", "USD", "Active"]]})
    result = read_order_files([path])
    assert result.lines["layout"].tolist() == ["header_lines"] * 3
    assert result.files[0].sheets == ["Orders", "Order Lines"]
