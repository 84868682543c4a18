"""Property-based fuzzing of every operation of the API's own OpenAPI document (schemathesis).

Bounded for CI: a fixed derandomised seed and `EXAMPLES` cases per operation against a real uvicorn
on loopback and a real SQLite file; the strong model is a loopback server answering at once. Every
answer must be no 5xx and must match the schema documented for its status (errors: the one error shape).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from service.settings import Settings
from service.store.migrate import upgrade
from tests.debate.loopback import Reply, completion_body, loopback_server
from tests.support.api_server import running_api

EXAMPLES = 40  # per operation and mode (valid and invalid inputs): ~2,000 requests, ~1.5 minutes on 2 cores
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    database_url = f"sqlite:///{root / 'w2s.db'}"
    upgrade(database_url)
    with loopback_server([Reply(body=completion_body("An argument."))], models=("strong",)) as strong:
        api_settings = Settings(
            _env_file=None,
            database_url=database_url,
            vllm_base_url=strong.base_url,
            artifacts_dir=root,
            max_debate_tokens=512,
            health_cache_s=60,
        )
        with running_api(api_settings) as url:
            yield url


def _fuzz(operation, mode: GenerationMode, base_url: str) -> str | None:  # noqa: ANN001 - an APIOperation
    """The first failure hypothesis finds (shrunk) for one operation and mode, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def check(case) -> None:  # noqa: ANN001 - a schemathesis Case
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60)

    try:
        check()
    except Unsatisfiable:  # no parameters to get wrong (GET /metrics in negative mode)
        return None
    except Exception as exc:  # noqa: BLE001 - collected: one report for every operation
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def test_no_operation_answers_5xx_or_off_schema(live_api: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := _fuzz(operation, mode, live_api))
    ]
    assert not failures, "\n\n".join(failures)
