"""The data files shipped in the package are exactly what ``tools/shipped_data.py`` writes from
zxcvbn and pycountry (installed with the tests, not with the service)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import shipped_data

EXPECTED = shipped_data.expected_files()


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda path: path.name)
def test_the_shipped_data_is_what_the_packages_give(path: Path) -> None:
    assert path.read_bytes() == EXPECTED[path].encode("utf-8"), (
        f"{path.name} differs from what zxcvbn and pycountry give: "
        "run `python3 dev.py data` and commit the file"
    )
