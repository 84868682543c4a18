"""Settings from the environment: an empty variable means the default, never the current directory."""

from pathlib import Path

import pytest

from service.settings import Settings


def test_an_empty_strong_model_path_means_the_testbed_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("W2S_STRONG_MODEL_PATH", "")
    monkeypatch.setenv("W2S_ARTIFACTS_DIR", str(tmp_path))
    settings = Settings()
    assert settings.strong_model_path is None
    assert settings.strong_checkpoint() == tmp_path / "models" / "testbed-strong"
    monkeypatch.setenv("W2S_STRONG_MODEL_PATH", str(tmp_path / "mine"))
    assert Settings().strong_checkpoint() == tmp_path / "mine"
