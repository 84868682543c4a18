"""deploy/: every file checked by a real tool against its schema, and every `w2s` command in it
parsed by the CLI the tests run.

* compose.yaml — check-jsonschema with its vendored Compose specification schema;
* k8s/*.yaml — kubernetes-validate (offline Kubernetes schemas), strict: unknown fields fail;
* systemd/*.service — `systemd-analyze verify` (the unit's w2s path pointed at this venv's);
* docker/*Dockerfile — parsed by dockerfile-parse: the app image's entrypoint is `w2s`.
"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from service.cli import _parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BIN = Path(sys.executable).parent
APP_IMAGE = "debate-w2s:latest"
INSTALLED_W2S = "/opt/debate-w2s/.venv/bin/"


def _tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}:/usr/bin:/bin")
    assert path, f"{name} is not installed: `bash deploy/setup.sh --with-postgres` installs it"
    return path


def _run(*command: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def _assert_w2s_command(args: list[str], where: str) -> None:
    """`args` (after `w2s`) parse with the real CLI parser into a command."""
    try:
        parsed = _parser().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"{where}: `w2s {shlex.join(args)}` does not parse") from exc
    assert callable(parsed.func), where


def test_compose_file_matches_the_compose_specification() -> None:
    result = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_postgres_vllm_api_and_workers_of_every_kind_with_w2s_commands() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert {"postgres", "vllm", "migrate", "api"} <= set(services)
    kinds = set()
    for name, service in services.items():
        if service.get("image") == APP_IMAGE:
            _assert_w2s_command(service["command"], f"compose service {name}")
            kinds |= _worker_kinds(service["command"])
    assert kinds == {"ingest", "debate", "refine_labels", "weak", "ensemble", "strong", "report"}
    assert services["worker-strong"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def _worker_kinds(args: list[str]) -> set[str]:
    return {args[i + 1] for i, arg in enumerate(args) if arg == "--kind"} if args[0] == "worker" else set()


@pytest.mark.parametrize("path", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda path: path.name)
def test_kubernetes_manifests_match_the_kubernetes_schemas(path: Path) -> None:
    result = _run(_tool("kubernetes-validate"), "--strict", str(path))
    assert result.returncode == 0 and "passed" in result.stdout, result.stdout + result.stderr


def _k8s_documents() -> list[dict]:
    return [
        doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def test_kubernetes_has_api_service_workers_per_kind_with_gpus_migration_volume_and_secrets() -> None:
    documents = _k8s_documents()
    by_kind = {(doc["kind"], doc["metadata"]["name"]) for doc in documents}
    assert {
        ("Deployment", "w2s-api"),
        ("Service", "w2s-api"),
        ("Job", "w2s-migrate"),
        ("PersistentVolumeClaim", "w2s-artifacts"),
        ("Secret", "w2s"),
        ("Deployment", "w2s-vllm"),
    } <= by_kind
    kinds, gpus = set(), {}
    for doc in documents:
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container["image"] == APP_IMAGE:
                _assert_w2s_command(container["args"], f"{doc['metadata']['name']}")
                kinds |= _worker_kinds(container["args"])
                gpus[doc["metadata"]["name"]] = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    assert kinds == {"ingest", "debate", "refine_labels", "weak", "ensemble", "strong", "report"}
    assert gpus["w2s-worker-strong"] == gpus["w2s-worker-weak"] == 1 and gpus["w2s-worker-debate"] is None


def test_systemd_units_verify(tmp_path: Path) -> None:
    """The units as installed (README), with the w2s of this venv standing in for /opt/debate-w2s's."""
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text().replace(INSTALLED_W2S, f"{BIN}/")
        (tmp_path / unit.name).write_text(text)
        units.append(tmp_path / unit.name.replace("@.service", "@debate.service"))
        if units[-1].name != unit.name:
            units[-1].write_text(text)
    result = _run(_tool("systemd-analyze"), "verify", *map(str, units), cwd=tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_systemd_units_run_w2s_commands() -> None:
    for unit in sorted((DEPLOY / "systemd").glob("w2s-*.service")):
        command = re.search(r"^ExecStart=(.*)$", unit.read_text().replace("\\\n", " "), re.M)[1]
        words = shlex.split(command.replace("%i", "debate"))
        if words[0] == f"{INSTALLED_W2S}w2s":
            _assert_w2s_command(words[1:], unit.name)
        else:
            assert words[:3] == [f"{INSTALLED_W2S}python", "-m", "vllm.entrypoints.openai.api_server"], unit.name
            assert "--enable-lora" in words


def test_app_image_runs_w2s_and_the_vllm_image_enables_runtime_lora() -> None:
    app = DockerfileParser(str(DEPLOY / "docker" / "Dockerfile"))
    assert yaml.safe_load(_instruction(app, "ENTRYPOINT")) == ["w2s"]
    _assert_w2s_command(yaml.safe_load(_instruction(app, "CMD")), "Dockerfile CMD")
    vllm = DockerfileParser(str(DEPLOY / "docker" / "vllm.Dockerfile"))
    assert vllm.envs["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "--enable-lora" in yaml.safe_load(_instruction(vllm, "CMD"))


def _instruction(parser: DockerfileParser, name: str) -> str:
    (value,) = [item["value"] for item in parser.structure if item["instruction"] == name]
    return value
