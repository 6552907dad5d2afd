"""Tools › Readings dictionary: the words the speech model should say differently (読み方辞書).

The dialog edits the same file as `miodesk dict` (miodesk.text.readings.ReadingsStore): every change
is saved at once, and the reading, previews and the speech server take it from their next sentence
(`LiveReadings` notices the file changed). The table lists every entry, filtered by the search field;
Add and Edit open a small form; Preview says the entry's reading through the window's engine.

Keyboard: Tab reaches every control; in the table Enter edits the entry, Space switches it on or off,
Delete deletes it (Undo brings it back). What the dialog says in its status line is also announced.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from miodesk.errors import MioDeskError
from miodesk.text.readings import (
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    MIN_PRIORITY,
    ChangeReport,
    Entry,
    ReadingsError,
    ReadingsStore,
    check_entry,
    default_language_for,
    nfkc,
    read_import,
)
from miodesk.ui import accessibility
from miodesk.ui.assets import icon
from miodesk.ui.theme import error_text
from miodesk.ui.widgets import open_window_modal

log = logging.getLogger(__name__)

Speak = Callable[[str], None]
COLUMNS = ("on", "word", "reading", "language", "priority", "kind")
_GROUP_REFERENCE = re.compile(r"\\(?:\d{1,2}|g<[^>]*>)")


def preview_text(entry: Entry) -> str:
    """What Preview says: the reading (a pattern's reading without its group references)."""
    if entry.regex:
        return " ".join(_GROUP_REFERENCE.sub(" ", entry.reading).replace("\\\\", "\\").split())
    return entry.reading


class ReadingEntryDialog(QDialog):
    """The form of one entry: Add (empty or with a word given) or Edit."""

    def __init__(self, entry: Entry | None = None, speak: Speak | None = None, parent: QWidget | None = None,
                 surface: str = "") -> None:
        super().__init__(parent)
        self._speak = speak
        self._editing = entry is not None
        self.entry: Entry | None = None  # the checked entry, once accepted
        self.setWindowTitle(self.tr("Edit Reading") if self._editing else self.tr("Add Reading"))
        self.word = QLineEdit(entry.surface if entry else surface)
        self.reading = QLineEdit(entry.reading if entry else "")
        self.language = QComboBox()
        for code, name in (("ja", self.tr("Japanese")), ("en", self.tr("English")), ("any", self.tr("Any language"))):
            self.language.addItem(name, code)
        self.priority = QSpinBox()
        self.priority.setRange(MIN_PRIORITY, MAX_PRIORITY)
        self.priority.setValue(entry.priority if entry else DEFAULT_PRIORITY)
        self.is_regex = QCheckBox(self.tr("The word is a regular e&xpression (the reading may use \\1)"))
        self.is_regex.setChecked(bool(entry and entry.regex))
        self.enabled = QCheckBox(self.tr("O&n"))
        self.enabled.setChecked(entry.enabled if entry else True)
        self.note = QLineEdit(entry.note if entry else "")
        self._language_chosen = self._editing  # a new entry's language follows its reading until chosen
        self._set_language(entry.lang if entry else "ja")
        self.language.activated.connect(self._language_picked)
        self.reading.textEdited.connect(self._reading_edited)

        form = QFormLayout()
        rows = ((self.tr("&Word:"), self.word), (self.tr("&Reading:"), self.reading),
                (self.tr("&Sentences:"), self.language), (self.tr("&Priority:"), self.priority),
                (self.tr("No&te:"), self.note))
        for text, field in rows:
            label = QLabel(text)
            label.setBuddy(field)
            form.addRow(label, field)
        form.addRow("", self.is_regex)
        form.addRow("", self.enabled)
        self.word.setAccessibleDescription(self.tr("The word as it is written in the text"))
        self.reading.setAccessibleDescription(self.tr("What the speech model is given instead, e.g. in kana"))
        self.priority.setAccessibleDescription(
            self.tr("Decides between two matches of the same length: the higher one wins"))
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.preview_button = buttons.addButton(self.tr("Pre&view"), QDialogButtonBox.ButtonRole.ActionRole)
        self.preview_button.setIcon(icon("preview"))
        self.preview_button.setAutoDefault(False)
        self.preview_button.clicked.connect(self.preview)
        self.preview_button.setEnabled(speak is not None)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.resize(520, self.sizeHint().height())
        (self.reading if self.word.text() and not self._editing else self.word).setFocus()

    def _set_language(self, code: str) -> None:
        self.language.setCurrentIndex(max(0, self.language.findData(code)))

    def _language_picked(self, _index: int) -> None:
        self._language_chosen = True

    def _reading_edited(self, text: str) -> None:
        if not self._language_chosen and text.strip():
            self._set_language(default_language_for(text))

    def current_entry(self) -> Entry:
        return Entry(self.word.text(), self.reading.text(), str(self.language.currentData()),
                     self.is_regex.isChecked(), self.priority.value(), self.enabled.isChecked(), self.note.text())

    def show_error(self, message: str) -> None:
        self.error_label.setStyleSheet(f"color: {error_text(self.palette()).name()};")
        self.error_label.setText(message)
        self.error_label.show()
        accessibility.announce(self, message, urgent=True)

    def accept(self) -> None:
        try:
            self.entry = check_entry(self.current_entry())
        except ReadingsError as error:
            self.show_error(str(error))
            fields = {"word": self.word, "reading": self.reading, "lang": self.language, "priority": self.priority,
                      "note": self.note}
            fields.get(error.field, self.word).setFocus()  # where the user fixes it
            return
        super().accept()

    def preview(self) -> None:
        text = preview_text(self.current_entry())
        if not text.strip():
            self.show_error(self.tr("Type a reading to hear it."))
            self.reading.setFocus()
            return
        if self._speak is not None:
            self._speak(text)


class ReadingsDialog(QDialog):
    """The whole dictionary: search, add, edit, delete (with Undo), switch on and off, preview, import, export."""

    def __init__(self, store: ReadingsStore | None = None, speak: Speak | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store or ReadingsStore()
        self._speak = speak
        self._entries: list[Entry] = []
        self._undo: list[Entry] = []  # the entries the last Delete removed
        self._filling = False
        self.setWindowTitle(self.tr("Readings Dictionary"))
        self.setObjectName("readingsDialog")

        intro = QLabel(self.tr("Words the speech model should say differently. Each change is saved at once and "
                               "heard from the next sentence read."))
        intro.setWordWrap(True)
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText(self.tr("Word, reading or note"))
        self.search.textChanged.connect(self._apply_filter)
        search_label = QLabel(self.tr("&Search:"))
        search_label.setBuddy(self.search)
        search_row = QHBoxLayout()
        search_row.addWidget(search_label)
        search_row.addWidget(self.search, 1)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("readingsTable")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table, as everywhere else in MioDesk
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Interactive)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)  # by word, as a dictionary is read
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _index: self.edit_selected())
        self.form: ReadingEntryDialog | None = None
        self.table.installEventFilter(self)

        self.add_button = QPushButton(self.tr("&Add…"))
        self.edit_button = QPushButton(self.tr("&Edit…"))
        self.delete_button = QPushButton(self.tr("&Delete"))
        self.undo_button = QPushButton(self.tr("&Undo"))
        self.preview_button = QPushButton(icon("preview"), self.tr("Pre&view"))
        self.import_button = QPushButton(self.tr("&Import…"))
        self.export_button = QPushButton(self.tr("E&xport…"))
        self.add_button.clicked.connect(lambda: self.add_entry())
        self.edit_button.clicked.connect(self.edit_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.undo_button.clicked.connect(self.undo_delete)
        self.preview_button.clicked.connect(self.preview_selected)
        self.import_button.clicked.connect(self._choose_import)
        self.export_button.clicked.connect(self._choose_export)
        row = QHBoxLayout()
        for button in (self.add_button, self.edit_button, self.delete_button, self.undo_button, self.preview_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.import_button)
        row.addWidget(self.export_button)
        for button in (self.add_button, self.edit_button, self.delete_button, self.undo_button, self.preview_button,
                       self.import_button, self.export_button):
            button.setAutoDefault(False)
            button.setAccessibleName(button.text().replace("&", ""))

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(search_row)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(close)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self).activated.connect(self.search.setFocus)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Undo), self).activated.connect(self.undo_delete)
        self.retranslate()
        self.resize(780, 520)
        self.reload()
        self.table.setFocus()

    # --- texts ------------------------------------------------------------------------------------

    def retranslate(self) -> None:
        headers = (self.tr("On"), self.tr("Word"), self.tr("Reading"), self.tr("Sentences"), self.tr("Priority"),
                   self.tr("Kind"))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setAccessibleName(self.tr("Readings"))
        self.table.setAccessibleDescription(
            self.tr("Enter edits the reading, Space switches it on or off, Delete deletes it"))
        self.search.setAccessibleDescription(self.tr("Shows only the readings that contain this text"))

    def _language_label(self, code: str) -> str:
        return {"ja": self.tr("Japanese"), "en": self.tr("English")}.get(code, self.tr("Any language"))

    # --- the table ----------------------------------------------------------------------------------

    def reload(self, select: Entry | None = None) -> None:
        """Show the file as it is now; keep `select` (or the selected entry) selected."""
        current = select or self.selected_entry()
        try:
            self._entries, problems = self.store.read()
        except MioDeskError as error:
            self._entries, problems = [], [str(error)]
        self._filling = True
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self._entries))
        for row, entry in enumerate(self._entries):
            on = QTableWidgetItem()
            on.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable)
            on.setCheckState(Qt.CheckState.Checked if entry.enabled else Qt.CheckState.Unchecked)
            on.setData(Qt.ItemDataRole.AccessibleTextRole, self.tr("On") if entry.enabled else self.tr("Off"))
            on.setData(Qt.ItemDataRole.UserRole, row)
            cells = [on, QTableWidgetItem(entry.surface), QTableWidgetItem(entry.reading),
                     QTableWidgetItem(self._language_label(entry.lang)), QTableWidgetItem(),
                     QTableWidgetItem(self.tr("Pattern") if entry.regex else self.tr("Word"))]
            cells[4].setData(Qt.ItemDataRole.DisplayRole, entry.priority)  # sorts as a number
            if entry.note:
                cells[1].setToolTip(entry.note)
            for column, item in enumerate(cells):
                if column:
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                item.setData(Qt.ItemDataRole.UserRole, row)
                self.table.setItem(row, column, item)
        self.table.setSortingEnabled(True)
        self._filling = False
        # The last column is sized here with some room: sized to contents, Japanese words there were clipped.
        self.table.resizeColumnToContents(len(COLUMNS) - 1)
        self.table.setColumnWidth(len(COLUMNS) - 1, self.table.columnWidth(len(COLUMNS) - 1) + 12)
        self._apply_filter()
        if current is not None:
            self._select(current)
        elif self.table.rowCount():
            self.table.selectRow(self._visible_rows()[0] if self._visible_rows() else 0)
        if problems:
            self._say(problems[0] + (self.tr(" (and {0} more)").format(len(problems) - 1) if len(problems) > 1 else ""),
                      error=True)
        self._update_buttons()

    def _row_entry(self, row: int) -> Entry | None:
        item = self.table.item(row, 0)
        index = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return self._entries[index] if isinstance(index, int) and 0 <= index < len(self._entries) else None

    def selected_entry(self) -> Entry | None:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()} if self.table.selectionModel() \
            else set()
        return self._row_entry(min(rows)) if rows else None

    def _select(self, entry: Entry) -> None:
        for row in range(self.table.rowCount()):
            found = self._row_entry(row)
            if found is not None and found.key == entry.key and not self.table.isRowHidden(row):
                self.table.selectRow(row)
                self.table.setCurrentCell(row, 1)
                self.table.scrollTo(self.table.model().index(row, 1))
                return

    def _visible_rows(self) -> list[int]:
        return [row for row in range(self.table.rowCount()) if not self.table.isRowHidden(row)]

    def _apply_filter(self) -> None:
        wanted = nfkc(self.search.text()).casefold().strip()
        for row in range(self.table.rowCount()):
            entry = self._row_entry(row)
            shown = entry is None or not wanted or any(
                wanted in nfkc(part).casefold() for part in (entry.surface, entry.reading, entry.note))
            self.table.setRowHidden(row, not shown)
        selected = self.selected_entry()
        if selected is None or not self._is_shown(selected):
            visible = self._visible_rows()
            if visible:
                self.table.selectRow(visible[0])
            else:
                self.table.clearSelection()
        self._update_buttons()

    def _is_shown(self, entry: Entry) -> bool:
        return any(self._row_entry(row) == entry for row in self._visible_rows())

    def _update_buttons(self) -> None:
        chosen = self.selected_entry() is not None
        for button in (self.edit_button, self.delete_button):
            button.setEnabled(chosen)
        self.preview_button.setEnabled(chosen and self._speak is not None)
        self.undo_button.setVisible(bool(self._undo))

    # --- keys ---------------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            plain = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier
            if plain and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.edit_selected()
                return True
            if plain and event.key() == Qt.Key.Key_Delete:
                self.delete_selected()
                return True
            if plain and event.key() == Qt.Key.Key_Space:
                self.toggle_selected()
                return True
        return super().eventFilter(watched, event)

    # --- changes ------------------------------------------------------------------------------------

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(f"color: {error_text(self.palette()).name()};" if error else "")
        self.status.setText(text)
        accessibility.announce(self, text, urgent=error)

    def _describe(self, report: ChangeReport, fallback: str) -> str:
        if report.replaced and not report.added:
            old, new = report.replaced[0]
            if old.reading != new.reading:
                return self.tr("Replaced the reading of “{0}”: {1} → {2}.").format(old.surface, old.reading,
                                                                                 new.reading)
        return fallback

    def add_entry(self, surface: str = "") -> ReadingEntryDialog:
        """Open the form for a new entry (with `surface` filled in: the reader's "Add reading for …");
        it is saved when the form is accepted."""
        form = ReadingEntryDialog(None, self._speak, self, surface=surface)
        form.accepted.connect(lambda: self._save_new(form.entry))
        self._open_form(form)
        return form

    def edit_selected(self) -> ReadingEntryDialog | None:
        old = self.selected_entry()
        if old is None:
            return None
        form = ReadingEntryDialog(old, self._speak, self)
        form.accepted.connect(lambda: self._save_edit(old, form.entry))
        self._open_form(form)
        return form

    def _open_form(self, form: ReadingEntryDialog) -> None:
        self.form = form  # the form now open (tests drive it)
        form.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        form.finished.connect(lambda _result: self.table.setFocus())
        open_window_modal(form)

    def _save_new(self, entry: Entry | None) -> None:
        if entry is None:
            return
        try:
            report = self.store.add(entry)
        except MioDeskError as error:
            self._say(str(error), error=True)
            return
        if not self._is_shown(entry) and self.search.text():
            self.search.clear()  # the new entry must be visible
        self.reload(select=entry)
        self._say(self._describe(report, self.tr("Added “{0}” → {1}.").format(entry.surface, entry.reading)))

    def _save_edit(self, old: Entry, new: Entry | None) -> None:
        if new is None:
            return
        try:
            self.store.update(old, new)
        except MioDeskError as error:
            self._say(str(error), error=True)
            return
        self.reload(select=new)
        self._say(self.tr("Saved “{0}” → {1}.").format(new.surface, new.reading))

    def delete_selected(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        row = self.table.currentRow()
        try:
            gone = self.store.remove(entry.surface, entry.lang)
        except MioDeskError as error:
            self._say(str(error), error=True)
            return
        self._undo = [e for e in gone if e.key == entry.key] or gone
        self._reload_after_delete(row)
        self._say(self.tr("Deleted “{0}” → {1}. Undo (Ctrl+Z) brings it back.").format(entry.surface, entry.reading))

    def _reload_after_delete(self, row: int) -> None:
        self.table.clearSelection()
        self.reload()
        visible = self._visible_rows()
        if visible:
            self.table.selectRow(min(visible, key=lambda r: abs(r - row)))
        self.table.setFocus()

    def undo_delete(self) -> None:
        if not self._undo:
            return
        entries, self._undo = self._undo, []
        try:
            self.store.add_all(entries)
        except MioDeskError as error:
            self._say(str(error), error=True)
            return
        self.reload(select=entries[0])
        self.table.setFocus()
        self._say(self.tr("Restored “{0}”.").format(entries[0].surface))

    def toggle_selected(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self._set_enabled(entry, not entry.enabled)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 0:
            return
        entry = self._row_entry(item.row())
        if entry is not None and (item.checkState() == Qt.CheckState.Checked) != entry.enabled:
            self._set_enabled(entry, not entry.enabled)

    def _set_enabled(self, entry: Entry, enabled: bool) -> None:
        try:
            self.store.update(entry, replace(entry, enabled=enabled))
        except MioDeskError as error:
            self._say(str(error), error=True)
            self.reload()
            return
        self.reload(select=replace(entry, enabled=enabled))
        self._say((self.tr("“{0}” is on.") if enabled else self.tr("“{0}” is off.")).format(entry.surface))

    def preview_selected(self) -> None:
        entry = self.selected_entry()
        if entry is not None and self._speak is not None:
            self._speak(preview_text(entry))

    # --- import and export ----------------------------------------------------------------------------

    def _choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Import Readings"), "",
            self.tr("Dictionaries (*.tsv *.txt *.json *.csv);;All files (*)"))
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> bool:
        try:
            result = read_import(path)
            if not result.entries:
                raise MioDeskError(self.tr("“{0}” holds no reading that could be imported.").format(path.name))
            report = self.store.add_all(result.entries)
        except MioDeskError as error:
            self._say(str(error), error=True)
            return False
        self.reload()
        text = self.tr("Imported {0} readings from “{1}”: {2} new, {3} replaced.").format(
            len(result.entries), path.name, len(report.added), len(report.replaced))
        if result.accents_dropped:
            text += " " + self.tr("The accent data of {0} words was dropped (the speech model takes no accent "
                                  "marks).").format(result.accents_dropped)
        if result.skipped:
            text += " " + self.tr("{0} skipped: {1}").format(len(result.skipped), result.skipped[0])
        self._say(text)
        return True

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export Readings"), "readings.tsv",
                                              self.tr("Readings (*.tsv)"))
        if path:
            self.export_file(Path(path))

    def export_file(self, path: Path) -> bool:
        try:
            count = self.store.export(path)
        except MioDeskError as error:
            self._say(str(error), error=True)
            return False
        self._say(self.tr("Exported {0} readings to “{1}”.").format(count, path.name))
        return True


def open_readings_dialog(parent: QWidget, speak: Speak | None, surface: str = "") -> ReadingsDialog:
    """Tools › Readings dictionary, and the reader's "Add reading for …" (`surface`: the add form opens at
    once). Window-modal, and returns at once."""
    dialog = ReadingsDialog(speak=speak, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    open_window_modal(dialog)
    if surface:
        dialog.add_entry(surface)
    return dialog
