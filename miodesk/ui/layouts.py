"""A layout that wraps: the transport bar's groups sit in one row when the window is wide and move to
further rows when it is narrow (a 1280×800 screen at 200 % is 640×400), instead of pushing controls
out of the window."""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QWidget


class WrapLayout(QLayout):
    """Items left to right at their preferred widths; one that does not fit starts a new row.

    Every item keeps its preferred width (less when the row is narrower) and is as tall as its row.
    The first item keeps to the left and the others to the right.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []

    # --- QLayout's item list ------------------------------------------------------------------

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    # --- sizes --------------------------------------------------------------------------------

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def sizeHint(self) -> QSize:
        visible = self._visible()
        width = sum(item.sizeHint().width() for item in visible) + self.spacing() * max(0, len(visible) - 1)
        height = max((item.sizeHint().height() for item in visible), default=0)
        return QSize(width, height).grownBy(self.contentsMargins())

    def minimumSize(self) -> QSize:
        # As narrow as the widest item: everything else can wrap.
        width = max((item.minimumSize().width() for item in self._visible()), default=0)
        height = max((item.minimumSize().height() for item in self._visible()), default=0)
        return QSize(width, height).grownBy(self.contentsMargins())

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    # --- placing ------------------------------------------------------------------------------

    def _visible(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    def _rows(self, width: int) -> list[list[QLayoutItem]]:
        rows: list[list[QLayoutItem]] = []
        used = 0
        for item in self._visible():
            wanted = item.sizeHint().width()
            if rows and used + self.spacing() + wanted <= width:
                rows[-1].append(item)
                used += self.spacing() + wanted
            else:
                rows.append([item])
                used = wanted
        return rows

    def _arrange(self, rect: QRect, move: bool) -> int:
        """Lay the items out in `rect` (only measure unless `move`); the height used, margins included."""
        margins: QMargins = self.contentsMargins()
        area = rect.marginsRemoved(margins)
        y = area.top()
        for index, row in enumerate(self._rows(area.width())):
            if index:
                y += self.spacing()
            widths = [min(item.sizeHint().width(), area.width()) for item in row]
            height = max(self._height(item, width) for item, width in zip(row, widths, strict=True))
            if move:
                self._place_row(row, widths, QRect(area.left(), y, area.width(), height), first_row=index == 0)
            y += height
        return y - area.top() + margins.top() + margins.bottom()

    @staticmethod
    def _height(item: QLayoutItem, width: int) -> int:
        if item.hasHeightForWidth():
            return item.heightForWidth(width)
        return max(item.sizeHint().height(), item.minimumSize().height())

    def _place_row(self, row: list[QLayoutItem], widths: list[int], rect: QRect, first_row: bool) -> None:
        spare = max(0, rect.width() - sum(widths) - self.spacing() * (len(row) - 1))
        # The layout's first item keeps left, all others right: the spare space goes before the second
        # item of the first row and before the first item of any other row.
        pad_before = 1 if first_row else 0
        x = rect.left()
        for index, (item, width) in enumerate(zip(row, widths, strict=True)):
            if index == pad_before:
                x += spare
            item.setGeometry(QRect(QPoint(x, rect.top()), QSize(width, rect.height())))
            x += width + self.spacing()
