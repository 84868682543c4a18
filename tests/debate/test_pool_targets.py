"""Which replicas a pool's configured URLs name: lists, and one DNS name with several addresses (headless Service)."""

import socket

import pytest

from debate.pool import expand_url, resolve_targets
from service.settings import Settings


def test_one_url_stays_exactly_as_configured() -> None:
    assert expand_url("http://127.0.0.1:8000") == ["http://127.0.0.1:8000"]
    assert expand_url("http://localhost:8000/v1") == ["http://localhost:8000/v1"]  # one IPv4 address: kept
    assert expand_url("http://no-such-host.invalid:8000") == ["http://no-such-host.invalid:8000"]  # checks say why


def test_a_name_with_several_addresses_is_one_replica_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cluster DNS of a headless Service is not here: answer as it would, for that one name only.
    real = socket.getaddrinfo

    def headless(host: str, *args: object, **kwargs: object) -> list:
        if host != "vllm.w2s.svc.cluster.local":
            return real(host, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 8000)) for address in ("10.0.0.9", "10.0.0.7")]

    monkeypatch.setattr(socket, "getaddrinfo", headless)
    targets = ["http://vllm.w2s.svc.cluster.local:8000", "http://127.0.0.1:9000", "http://10.0.0.7:8000"]
    assert resolve_targets(targets) == ["http://10.0.0.7:8000", "http://10.0.0.9:8000", "http://127.0.0.1:9000"]


def test_settings_list_several_urls_or_fall_back_to_the_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("W2S_VLLM_BASE_URL", "http://a:8000")
    assert Settings(_env_file=None).vllm_targets() == ["http://a:8000"]
    monkeypatch.setenv("W2S_VLLM_BASE_URLS", "http://b:8000, http://c:8000,")
    assert Settings(_env_file=None).vllm_targets() == ["http://b:8000", "http://c:8000"]
    monkeypatch.delenv("W2S_VLLM_BASE_URL")
    monkeypatch.delenv("W2S_VLLM_BASE_URLS")
    assert Settings(_env_file=None).vllm_targets() == []
