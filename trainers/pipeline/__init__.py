"""Experiments: a run config (`config`) becomes a DAG of jobs (`plan`: ingest -> debates -> weak members
-> ensembles -> strong conditions -> report) that workers of each kind execute (`trainers.jobs`).
"""

from __future__ import annotations

from trainers.pipeline.config import RunConfig, RunConfigError, load_run_config, parse_run_config
from trainers.pipeline.plan import submit_run

__all__ = ["RunConfig", "RunConfigError", "load_run_config", "parse_run_config", "submit_run"]
