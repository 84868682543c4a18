"""Small helpers tests use to look at results the way a user would: plain SQL, and waiting."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.store import make_engine
from service.store.models import Example, Label, Model


def sql_rows(database_url: str, query: str) -> list[tuple]:
    """Rows of a plain SQL query, through a fresh engine (as another process would see them)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query))]
    finally:
        engine.dispose()


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll_s)


def kill_group(process: subprocess.Popen) -> None:
    """Kill a process started with `start_new_session=True` and every child it left (a failed test leaves none)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def split_labels(session: Session, model_name: str, split: str) -> dict[int, float]:
    """example id -> soft label of the model called `model_name`, on the examples of `split`."""
    rows = session.execute(
        select(Label.example_id, Label.soft_label)
        .join(Model, Model.id == Label.model_id)
        .join(Example, Example.id == Label.example_id)
        .where(Model.name == model_name, Example.split == split)
    )
    return dict(rows.all())
