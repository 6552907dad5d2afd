from __future__ import annotations

import pytest

from miodesk.formatting import format_duration


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0:00"), (4.4, "0:04"), (59.6, "1:00"), (61, "1:01"), (3599, "59:59"), (3600, "1:00:00"),
    (3725, "1:02:05"), (36000, "10:00:00"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
