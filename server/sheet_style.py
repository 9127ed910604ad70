"""How the hall office's printed sheets look: thin black boxes, a grey header, A4 landscape.

The attendance sheet, the ratings statistics and the weekly patrol bulletin
are printed and filed together, so they share one look and one page set-up.
"""

from __future__ import annotations

from openpyxl.styles import Alignment, Border, PatternFill, Side
from openpyxl.worksheet.worksheet import Worksheet

THIN = Side(style="thin", color="000000")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD_FILL = PatternFill("solid", fgColor="D9D9D9")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)


def print_on_a4(ws: Worksheet, freeze: str, title_rows: str) -> None:
    """Landscape A4, as wide as the page and as many pages long as needed; the rows ``title_rows``
    (e.g. "3:3") repeated on every page, and the sheet frozen above and left of the cell ``freeze``."""
    ws.freeze_panes = freeze
    ws.print_title_rows = title_rows
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
