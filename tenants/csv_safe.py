"""CSV files the product writes: Excel-friendly, and no cell a spreadsheet would run as a formula.

A resident, group or city name such as `=HYPERLINK("http://x","y")` would otherwise become a live
formula when staff open an export in Excel (CSV injection). Following OWASP's guidance, text
that starts with a character a spreadsheet reads as the start of a formula gets a leading single
quote, which Excel shows as text and hides; numbers the code produces stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

# = + - @ start formulas; a tab or CR first lets some spreadsheets skip to one that follows.
# Their full-width forms too: Japanese Excel turns ＝ typed first into =.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
BOM = "\ufeff"


def safe_cell(value: Any) -> Any:
    """A cell as a spreadsheet should show it: None empty, numbers as numbers, text inert."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        # Numeric by construction (a count, a rate): -3 stays a number a sum can add up.
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as Excel opens them right: a UTF-8 BOM (or the Japanese turns to mojibake), CRLF line
    ends, and every cell through `safe_cell`."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [safe_cell(value) for value in row] for row in rows)
    return BOM + buffer.getvalue()
