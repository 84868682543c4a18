"""The shipped data sets (/work/shared/data, see its SOURCES.md); a test that needs one skips when it is absent."""

from pathlib import Path

import pytest

SHARED_DATA = Path("/work/shared/data")


def shared_data_dir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path
