"""Any run config, one way in: a classification experiment (`trainers.pipeline`) or, with `kind: generative`,
a generative one (`trainers.generative`). The CLI (`w2s run`, `w2s report`) and the API (`/v1/runs`) load,
submit and report runs only through these functions, which dispatch on `kind`.

    config = load_any_run_config(Path("configs/toxicity.yaml"))
    run, created = submit_any_run(session, config, strong_model="strong")
    print(run_report_markdown(session, run.id))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.store.models import Run
from trainers.errors import RunConfigError
from trainers.generative.config import GenerativeRunConfig, is_generative, stored_generative_config
from trainers.generative.plan import submit_generative_run
from trainers.generative.report import (
    GenerativeReport,
    build_generative_report,
    generative_markdown,
    generative_table,
)
from trainers.pipeline.config import RunConfig, format_validation_error, read_run_document
from trainers.pipeline.plan import submit_run
from trainers.report import Report, accuracy_table, build_report, report_json, report_markdown

AnyRunConfig = RunConfig | GenerativeRunConfig


def validate_any_run_config(data: Any) -> AnyRunConfig:
    """The config of the document's `kind`; pydantic's ValidationError (field paths) if it is not valid."""
    return (GenerativeRunConfig if is_generative(data) else RunConfig).model_validate(data)


def parse_any_run_config(data: Any) -> AnyRunConfig:
    """As `validate_any_run_config`; RunConfigError lists `field.path: reason` lines."""
    try:
        return validate_any_run_config(data)
    except ValidationError as exc:
        raise RunConfigError(format_validation_error(exc)) from exc


def load_any_run_config(path: Path, *, data_dir: str | None = None) -> AnyRunConfig:
    """Read and validate a YAML (or JSON) run config file of either kind (data_dir as `load_run_config`)."""
    return parse_any_run_config(read_run_document(path, data_dir=data_dir))


def submit_any_run(
    session: Session, config: AnyRunConfig, *, strong_model: str, code_version: str = ""
) -> tuple[Run, bool]:
    """Create the run and its jobs, or find the run of the same config and resume it; (run, created)."""
    submit = submit_generative_run if isinstance(config, GenerativeRunConfig) else submit_run
    return submit(session, config, strong_model=strong_model, code_version=code_version)


def build_run_report(session: Session, run_id: int) -> Report | GenerativeReport:
    """The report of the run from its rows as they are: the generative one or the classification one."""
    run = session.get(Run, run_id)
    if is_generative(run.config):
        return build_generative_report(session, run_id, stored_generative_config(run.config))
    return build_report(session, run_id)


def run_report_markdown(session: Session, run_id: int) -> str:
    report = build_run_report(session, run_id)
    return generative_markdown(report) if isinstance(report, GenerativeReport) else report_markdown(report)


def run_report_json(session: Session, run_id: int) -> dict[str, Any]:
    report = build_run_report(session, run_id)
    return report.model_dump(mode="json") if isinstance(report, GenerativeReport) else report_json(report)


def run_report_table(session: Session, run_id: int) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, cells and notes of the run's results table (the browser page's)."""
    report = build_run_report(session, run_id)
    if isinstance(report, GenerativeReport):
        return (*generative_table(report), [])
    return (*accuracy_table(report), report.notes)
