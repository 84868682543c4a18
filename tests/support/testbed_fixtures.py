"""pytest fixtures: the built-in testbed's pretrained weak and strong models, built once per session.

Pretraining both takes about 1.5 CPU-minutes on 2 cores; every test that needs a model that
*knows* something (the science tests, the testbed end-to-end run) shares these.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.testbed import STRONG, WEAK, ensure_testbed_model


@pytest.fixture(scope="session")
def testbed_strong_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_testbed_model(tmp_path_factory.mktemp("testbed") / "strong", STRONG)


@pytest.fixture(scope="session")
def testbed_weak_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_testbed_model(tmp_path_factory.mktemp("testbed") / "weak", WEAK)


@pytest.fixture
def testbed_artifacts(tmp_path: Path, testbed_strong_dir: Path, testbed_weak_dir: Path) -> Path:
    """An artifacts dir whose default models are the session's testbed models (linked, not pretrained again)."""
    models = tmp_path / "artifacts" / "models"
    models.mkdir(parents=True)
    (models / "testbed-strong").symlink_to(testbed_strong_dir, target_is_directory=True)
    (models / "testbed-weak").symlink_to(testbed_weak_dir, target_is_directory=True)
    return tmp_path / "artifacts"
