"""The OpenAI-compatible files and fine-tuning API, driven by the official `openai` client over real HTTP.

The server is uvicorn on loopback (no vLLM needed: nothing here calls the strong model); every
test that takes `api` runs on SQLite and on PostgreSQL.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import Example, Job, Label, Model, ModelVersion, Run, make_engine, make_session_factory
from service.store.db import utcnow
from service.store.jobs import enqueue_job
from service.store.uploaded_files import read_examples, read_file_rows
from tests.support import training_options as options
from tests.support.api_server import running_api
from tests.support.checks import sql_rows
from trainers.jobs.payloads import parse_payload
from trainers.pipeline import parse_run_config, submit_run
from trainers.worker import JobContext, Worker

API_KEY = "sk-test-fine-tuning"
RUN_CONFIG = {
    "task": "synthetic",
    "splits": {"weak_train": 8, "strong_train": 8, "test": 8},
    "conditions": ["no_debate"],
}
TRAIN = b'{"prompt": "Q: 2+2? A: 4", "label": 0.9}\n{"prompt": "Q: 2+2? A: 5", "label": 0.15, "id": "x"}\n'


@dataclass
class Api:
    client: openai.OpenAI
    database_url: str
    sessions: sessionmaker[Session]
    files_dir: Path


@pytest.fixture
def api(migrated_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        _env_file=None,
        database_url=migrated_url,
        strong_model="strong",
        vllm_base_url="http://127.0.0.1:9",
        artifacts_dir=tmp_path / "artifacts",
        api_keys=[API_KEY],
        max_upload_bytes=4096,
    )
    engine = make_engine(migrated_url)
    with running_api(settings) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0, timeout=30)
        yield Api(client, migrated_url, make_session_factory(engine), tmp_path / "artifacts" / "files")
        client.close()
    engine.dispose()


def _payload(database_url: str, job_id: str) -> dict:
    job = job_id.removeprefix("ftjob-")
    [(kind, payload)] = sql_rows(database_url, f"SELECT kind, payload FROM jobs WHERE id = {job}")
    assert kind == "strong"
    return json.loads(payload) if isinstance(payload, str) else payload


def _upload(api: Api, content: bytes = TRAIN, name: str = "train.jsonl") -> str:
    return api.client.files.create(file=(name, content), purpose="fine-tune").id


def test_upload_create_list_events_cancel_and_delete(api: Api) -> None:
    uploaded = api.client.files.create(file=("train.jsonl", TRAIN), purpose="fine-tune")
    assert (uploaded.object, uploaded.filename, uploaded.purpose, uploaded.status) == (
        "file",
        "train.jsonl",
        "fine-tune",
        "processed",
    )
    assert uploaded.bytes == len(TRAIN) and uploaded.id.startswith("file-")
    assert api.client.files.retrieve(uploaded.id) == uploaded
    assert [f.id for f in api.client.files.list()] == [uploaded.id]
    assert api.client.files.content(uploaded.id).read() == TRAIN
    [(path, lines)] = sql_rows(api.database_url, "SELECT path, lines FROM files")
    assert lines == 2 and [e["label"] for e in read_examples(path)] == [0.9, 0.15]
    with api.sessions() as session:  # what the strong trainer reads
        assert read_file_rows(session, int(uploaded.id.removeprefix("file-")))[1] == {
            "prompt": "Q: 2+2? A: 5",
            "label": 0.15,
            "id": "x",
        }

    job = api.client.fine_tuning.jobs.create(
        model="strong",
        training_file=uploaded.id,
        seed=7,
        suffix="sciq-w2s",
        metadata={"task": "sciq"},
        hyperparameters={"n_epochs": 2, "batch_size": 8, "learning_rate_multiplier": 0.5},
        extra_body={"loss": "logconf", "head": "lm"},
    )
    assert (job.object, job.status, job.model, job.training_file, job.seed) == (
        "fine_tuning.job",
        "queued",
        "strong",
        uploaded.id,
        7,
    )
    assert job.hyperparameters.model_dump() == {"n_epochs": 2, "batch_size": 8, "learning_rate_multiplier": 0.5}
    assert job.metadata == {"task": "sciq"} and job.fine_tuned_model is None and job.error is None
    assert _payload(api.database_url, job.id) == {
        "run_id": None,
        "condition": "fine_tune",
        "base_model": "strong",
        "train": {"file_id": int(uploaded.id.removeprefix("file-"))},
        "validation": None,
        "hyperparameters": {
            "n_epochs": 2,
            "batch_size": 8,
            "learning_rate_multiplier": 0.5,
            "loss": "logconf",
            "head": "lm",
            "lora": {"r": 8, "alpha": 16.0, "dropout": 0.0},
            "seed": 7,
            "eval_every": 0,
        },
        "publish": True,
        "suffix": "sciq-w2s",
        "parent_version_id": None,
    }
    assert api.client.fine_tuning.jobs.retrieve(job.id) == job

    with pytest.raises(openai.ConflictError, match=f"used by queued or running fine-tuning job.*{job.id}"):
        api.client.files.delete(uploaded.id)

    cancelled = api.client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    with pytest.raises(openai.BadRequestError, match="already cancelled"):
        api.client.fine_tuning.jobs.cancel(job.id)
    events = api.client.fine_tuning.jobs.list_events(job.id).data
    assert [(e.object, e.level, e.message) for e in events] == [
        ("fine_tuning.job.event", "info", "Fine-tuning job cancelled"),
        ("fine_tuning.job.event", "info", "Created fine-tuning job"),
    ]

    assert api.client.files.delete(uploaded.id).deleted is True
    assert not Path(path).exists() and list(api.files_dir.iterdir()) == []
    with pytest.raises(openai.NotFoundError):
        api.client.files.retrieve(uploaded.id)


def test_jobs_and_events_page_newest_first(api: Api) -> None:
    file_id = _upload(api)
    created = [api.client.fine_tuning.jobs.create(model="strong", training_file=file_id).id for _ in range(3)]
    first = api.client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in first.data] == created[:0:-1] and first.has_more
    assert [j.id for j in api.client.fine_tuning.jobs.list(limit=2, after=first.data[-1].id).data] == created[:1]
    assert [j.id for j in api.client.fine_tuning.jobs.list()] == created[::-1]  # the client follows the cursor
    assert all(j.hyperparameters.n_epochs == "auto" and isinstance(j.seed, int) for j in first.data)

    api.client.fine_tuning.jobs.cancel(created[0])
    events = api.client.fine_tuning.jobs.list_events(created[0], limit=1)
    assert [e.message for e in events.data] == ["Fine-tuning job cancelled"] and events.has_more
    older = api.client.fine_tuning.jobs.list_events(created[0], limit=1, after=events.data[0].id)
    assert [e.message for e in older.data] == ["Created fine-tuning job"] and not older.has_more


def _weak_model_with_labels(sessions: sessionmaker[Session], labelled: bool = True) -> tuple[int, int]:
    """A run with one strong_train and one test example and a weak model labelling them: (model id, run id)."""
    with sessions.begin() as session:
        run = Run(config={}, config_hash="0" * 64)
        session.add(run)
        session.flush()
        examples = [
            Example(
                run_id=run.id,
                task="sciq",
                split=split,
                source_id=split,
                candidate_id="correct",
                question="q",
                candidate="a",
                label=1,
            )
            for split in ("strong_train", "test")
        ]
        weak = Model(name=f"weak-{run.id}-{labelled}", role="weak", base="tiny", run_id=run.id)
        session.add_all([*examples, weak])
        session.flush()
        session.add(Label(model_id=weak.id, example_id=examples[1].id, soft_label=0.7, hard_label=1))
        if labelled:
            session.add(Label(model_id=weak.id, example_id=examples[0].id, soft_label=0.3, hard_label=0))
        return weak.id, run.id


def test_weak_labels_as_training_data_with_method_and_extensions(api: Api) -> None:
    weak_id, run_id = _weak_model_with_labels(api.sessions)
    validation = _upload(api, name="valid.jsonl")
    job = api.client.fine_tuning.jobs.create(
        model="strong",
        training_file=f"labels-{weak_id}",
        validation_file=validation,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        extra_body={"lora": None, "head": "linear", "loss": "product", "publish": False},
    )
    assert job.training_file == f"labels-{weak_id}" and job.validation_file == validation
    assert job.method.type == "supervised" and job.method.supervised.hyperparameters.n_epochs == 3
    payload = _payload(api.database_url, job.id)
    assert payload["run_id"] == run_id and payload["train"] == {"labels_model_id": weak_id}
    assert payload["validation"] == {"file_id": int(validation.removeprefix("file-"))}
    assert payload["hyperparameters"] | {"seed": None} == {
        "n_epochs": 3,
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
        "loss": "product",
        "head": "linear",
        "lora": None,
        "seed": None,
        "eval_every": 0,
    }
    assert isinstance(payload["hyperparameters"]["seed"], int)  # drawn, as OpenAI does, and reported
    assert payload["publish"] is False and payload["suffix"] is None
    assert sql_rows(api.database_url, f"SELECT run_id FROM jobs WHERE id = {job.id[6:]}") == [(None,)]

    unlabelled, _ = _weak_model_with_labels(api.sessions, labelled=False)  # labels on test only
    with pytest.raises(openai.UnprocessableEntityError, match="no labels on its run's strong_train") as bad:
        api.client.fine_tuning.jobs.create(model="strong", training_file=f"labels-{unlabelled}")
    assert bad.value.param == "body.training_file"
    with pytest.raises(openai.NotFoundError, match="no weak model with id 999"):
        api.client.fine_tuning.jobs.create(model="strong", training_file="labels-999")


def test_a_served_model_version_can_be_finetuned_unknown_models_cannot(api: Api) -> None:
    with api.sessions.begin() as session:
        model = Model(name="strong-w2s", role="strong", base="strong")
        session.add(model)
        session.flush()
        session.add_all(
            [
                ModelVersion(model_id=model.id, version=1, served_name="strong-w2s-v1", adapter_path="/a/v1"),
                ModelVersion(model_id=model.id, version=2, served_name="strong-w2s-v2"),
            ]
        )
    file_id = _upload(api)
    job = api.client.fine_tuning.jobs.create(model="strong-w2s-v1", training_file=file_id)
    [(parent,)] = sql_rows(api.database_url, "SELECT id FROM model_versions WHERE served_name = 'strong-w2s-v1'")
    assert job.model == "strong-w2s-v1" and _payload(api.database_url, job.id)["parent_version_id"] == parent
    assert (
        _payload(api.database_url, api.client.fine_tuning.jobs.create(model="strong", training_file=file_id).id)[
            "parent_version_id"
        ]
        is None
    )
    for extra, param in (({"head": "linear"}, "body.head"), ({"lora": None}, "body.lora"), ({}, "body.model")):
        with pytest.raises(openai.UnprocessableEntityError) as refused:  # a version continues its LoRA adapter
            api.client.fine_tuning.jobs.create(
                model="strong-w2s-v2" if not extra else "strong-w2s-v1", training_file=file_id, extra_body=extra
            )
        assert refused.value.param == param, refused.value.message
    with pytest.raises(openai.NotFoundError, match="model 'gpt-4o-mini' not found") as unknown:
        api.client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert unknown.value.type == "model_not_found" and unknown.value.param == "body.model"
    with pytest.raises(openai.NotFoundError, match="training_file 'file-999' not found: upload it first"):
        api.client.fine_tuning.jobs.create(model="strong", training_file="file-999")
    with pytest.raises(openai.NotFoundError, match="validation_file 'file-998' not found"):
        api.client.fine_tuning.jobs.create(model="strong", training_file=file_id, validation_file="file-998")
    assert sql_rows(api.database_url, "SELECT count(*) FROM jobs") == [(2,)]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"hyperparameters": {"n_epochs": 0}}, "body.hyperparameters.n_epochs"),
        ({"hyperparameters": {"learning_rate_multiplier": "fast"}}, "body.hyperparameters.learning_rate_multiplier"),
        ({"method": {"type": "dpo"}}, "body.method.type"),
        ({"extra_body": {"loss": "hinge"}}, "body.loss"),
        ({"extra_body": {"lora": {"r": 0}}}, "body.lora.r"),
        ({"extra_body": {"head": "mlp"}}, "body.head"),
        ({"suffix": "no spaces please"}, "body.suffix"),
        ({"extra_body": {"eval_every": 5}}, "body"),  # evaluation needs a validation_file
        ({"extra_body": {"eval_every": -1}}, "body.eval_every"),
        ({"training_file": "train.jsonl"}, "body.training_file"),
        (
            {
                "hyperparameters": {"n_epochs": 2},
                "method": {"type": "supervised", "supervised": {"hyperparameters": {}}},
            },
            "body",
        ),
    ],
    ids=["epochs", "rate", "dpo", "loss", "lora", "head", "suffix", "eval_alone", "eval_negative", "file", "both"],
)
def test_invalid_job_bodies_name_the_field(api: Api, body: dict, param: str) -> None:
    request = {"model": "strong", "training_file": _upload(api), **body}
    with pytest.raises(openai.UnprocessableEntityError) as error:
        api.client.fine_tuning.jobs.create(**request)
    assert error.value.param == param, error.value.message
    assert sql_rows(api.database_url, "SELECT count(*) FROM jobs") == [(0,)]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            b'{"prompt": "a", "label": 0.5}\n\n{"prompt": "b", "label": 1.5}\n',
            'line 3: "label" must be a number in [0, 1]',
        ),
        (
            b'{"prompt": "a", "label": 1}\n{"prompt": "b", "label": 0}\n{"prompt": "c" "label": 0}\n',
            "line 3: not valid JSON",
        ),
        (b'{"text": "a", "label": 1}\n', "line 1: missing 'prompt'"),
        (b'{"prompt": "a", "label": true}\n', 'line 1: "label" must be a number'),
        (b'["a", 1]\n', "line 1: expected a JSON object"),
        (b'{"prompt": "a", "label": 1}\n\xff\n', "line 2: not UTF-8"),
        (b"\n\n", "file has no examples"),
    ],
    ids=["label", "json", "prompt", "bool", "array", "utf8", "empty"],
)
def test_bad_training_file_is_refused_naming_the_line(api: Api, content: bytes, problem: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as error:
        _upload(api, content, name="bad.jsonl")
    message = error.value.body["message"]
    assert message.startswith("invalid training file 'bad.jsonl': ") and problem in message
    assert error.value.param == "body.file"
    assert sql_rows(api.database_url, "SELECT count(*) FROM files") == [(0,)]
    assert list(api.files_dir.iterdir()) == []  # the staged upload was removed too


def test_upload_limits_purpose_and_unknown_ids(api: Api) -> None:
    with pytest.raises(openai.APIStatusError, match="over the limit of 4096") as too_big:
        _upload(api, b'{"prompt": "a", "label": 1}\n' * 200)
    assert too_big.value.status_code == 413
    with pytest.raises(openai.UnprocessableEntityError) as purpose:
        api.client.files.create(file=("t.jsonl", TRAIN), purpose="batch")
    assert purpose.value.param == "body.purpose"
    for missing in ("file-12345", "train.jsonl"):
        with pytest.raises(openai.NotFoundError):
            api.client.files.retrieve(missing)
    with pytest.raises(openai.NotFoundError, match="no fine-tuning job with id 'ftjob-77'"):
        api.client.fine_tuning.jobs.retrieve("ftjob-77")
    with api.sessions.begin() as session:
        debate_job = enqueue_job(session, "debate", {}).id
    with pytest.raises(openai.NotFoundError):  # only kind "strong" jobs are fine-tuning jobs
        api.client.fine_tuning.jobs.retrieve(f"ftjob-{debate_job}")
    assert sql_rows(api.database_url, "SELECT count(*) FROM files") == [(0,)]


def test_api_key_is_required(api: Api) -> None:
    stranger = openai.OpenAI(base_url=str(api.client.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        stranger.fine_tuning.jobs.list()
    with pytest.raises(openai.PermissionDeniedError):
        stranger.files.create(file=("t.jsonl", TRAIN), purpose="fine-tune")
    with pytest.raises(openai.PermissionDeniedError):
        stranger.models.list()


def test_a_worker_runs_the_job_and_the_client_sees_progress_and_result(api: Api) -> None:
    seen: list[dict] = []

    def strong(ctx: JobContext) -> dict:
        seen.append(ctx.payload)
        ctx.event("Step 1/2: training loss=0.41", step=1, train_loss=0.41)
        return {
            "fine_tuned_model": "strong-ft-1",
            "trained_tokens": 1234,
            "hyperparameters": {"n_epochs": 3, "batch_size": 16, "learning_rate_multiplier": 1.0},
        }

    job = api.client.fine_tuning.jobs.create(model="strong", training_file=_upload(api))
    assert Worker(api.sessions, {"strong": strong}, owner="gpu0").run_one()
    done = api.client.fine_tuning.jobs.retrieve(job.id)
    assert (done.status, done.fine_tuned_model, done.trained_tokens) == ("succeeded", "strong-ft-1", 1234)
    assert done.hyperparameters.model_dump() == {"n_epochs": 3, "batch_size": 16, "learning_rate_multiplier": 1.0}
    assert done.finished_at >= done.created_at and done.estimated_finish is None
    assert seen[0]["train"] == {"file_id": int(job.training_file.removeprefix("file-"))}
    events = api.client.fine_tuning.jobs.list_events(job.id).data
    assert [(e.type, e.message) for e in events] == [
        ("message", "Job succeeded"),
        ("metrics", "Step 1/2: training loss=0.41"),
        ("message", "Job started: attempt 1 of 3 on worker gpu0"),
        ("message", "Created fine-tuning job"),
    ]
    assert events[1].data == {"step": 1, "train_loss": 0.41}


def test_failed_and_running_jobs_report_error_and_estimated_finish(api: Api) -> None:
    file_id = _upload(api)
    failing = api.client.fine_tuning.jobs.create(model="strong", training_file=file_id)
    running = api.client.fine_tuning.jobs.create(model="strong", training_file=file_id)
    with api.sessions.begin() as session:
        session.get(Job, int(failing.id[6:])).status = "failed"
        session.get(Job, int(failing.id[6:])).error = "ValueError: labels and prompts differ\nTraceback ..."
        job = session.get(Job, int(running.id[6:]))
        job.status, job.progress, job.heartbeat_at = "running", {"done": 5, "total": 10, "eta_s": 60.0}, job.created_at
    failed = api.client.fine_tuning.jobs.retrieve(failing.id)
    assert failed.status == "failed"
    assert failed.error.model_dump() == {
        "code": "ValueError",
        "message": "ValueError: labels and prompts differ",
        "param": None,
    }
    now_running = api.client.fine_tuning.jobs.retrieve(running.id)
    assert now_running.status == "running" and now_running.estimated_finish == now_running.created_at + 60
    assert now_running.error is None


def _finish(api: Api, result: dict) -> str:
    """A fine-tuning job that a worker ran to success with `result`; its id."""
    job = api.client.fine_tuning.jobs.create(model="strong", training_file=_upload(api))
    assert Worker(api.sessions, {"strong": lambda ctx: result}, owner="gpu0").run_one()
    return job.id


def test_a_pipeline_runs_strong_jobs_are_not_fine_tuning_jobs(api: Api) -> None:
    ours = api.client.fine_tuning.jobs.create(model="strong", training_file=_upload(api))
    with api.sessions.begin() as session:  # a real run: its strong jobs have the pipeline's payload
        run, _ = submit_run(session, parse_run_config(RUN_CONFIG), strong_model="strong")
        pipeline_ids = [
            job.id for job in session.scalars(select(Job).where(Job.run_id == run.id, Job.kind == "strong"))
        ]
    assert pipeline_ids and all(job_id > int(ours.id[6:]) for job_id in pipeline_ids)
    assert [job.id for job in api.client.fine_tuning.jobs.list()] == [ours.id]
    assert [job.id for job in api.client.fine_tuning.jobs.list(limit=1).data] == [ours.id]
    pipeline_job = f"ftjob-{pipeline_ids[0]}"
    for call in (
        api.client.fine_tuning.jobs.retrieve,
        api.client.fine_tuning.jobs.cancel,
        api.client.fine_tuning.jobs.list_events,
        api.client.fine_tuning.jobs.checkpoints.list,
    ):
        with pytest.raises(openai.NotFoundError, match=f"no fine-tuning job with id '{pipeline_job}'"):
            call(pipeline_job)


CHAT = (
    b'{"messages": [{"role": "system", "content": "Judge the answer."}, '
    b'{"role": "user", "content": "Q: 2+2? A: 4"}, {"role": "assistant", "content": "Yes"}], "id": "a"}\n'
    b'{"messages": [{"role": "user", "content": "Q: 2+2? A: 5"}, {"role": "assistant", "content": "no."}]}\n'
    b'{"messages": [{"role": "user", "content": "Q: 3+3? A: 6"}, {"role": "assistant", "content": "0.75"}]}\n'
    b'{"prompt": "Q: 1+1? A: 2", "label": 1}\n'
)


def test_chat_format_files_train_on_the_last_assistant_message(api: Api) -> None:
    file_id = _upload(api, CHAT, "chat.jsonl")
    assert api.client.files.retrieve(file_id).lines == 4
    with api.sessions() as session:  # what the strong trainer reads
        assert read_file_rows(session, int(file_id.removeprefix("file-"))) == [
            {"id": "a", "prompt": "Judge the answer.\n\nQ: 2+2? A: 4", "label": 1.0},
            {"prompt": "Q: 2+2? A: 5", "label": 0.0},
            {"prompt": "Q: 3+3? A: 6", "label": 0.75},
            {"prompt": "Q: 1+1? A: 2", "label": 1},
        ]
    job = api.client.fine_tuning.jobs.create(model="strong", training_file=file_id)
    assert job.training_file == file_id and job.status == "queued"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            b'{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "maybe"}]}',
            "line 1: the last assistant message must be 'Yes' or 'No'",
        ),
        (
            b'{"messages": [{"role": "assistant", "content": "Yes"}, {"role": "user", "content": "Q"}]}',
            "line 1: the last message must be the assistant's answer",
        ),
        (
            b'{"messages": [{"role": "user", "content": "Q"}, {"role": "bot", "content": "Yes"}]}',
            "line 1: message 2: expected",
        ),
        (b'{"messages": [{"role": "assistant", "content": "Yes"}]}', "at least two messages"),
        (b'{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "1.5"}]}', "got '1.5'"),
    ],
)
def test_bad_chat_lines_are_refused_with_what_to_write(api: Api, line: bytes, problem: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match=re.escape(problem)):
        _upload(api, line + b"\n", "chat.jsonl")
    assert api.client.files.list().data == []


def test_models_lists_the_base_and_published_versions(api: Api) -> None:
    assert [(m.id, m.owned_by) for m in api.client.models.list()] == [("strong", "system")]
    with api.sessions.begin() as session:
        model = Model(name="ft", role="strong", base="tiny")
        session.add(model)
        session.flush()
        first = ModelVersion(model_id=model.id, version=1, served_name="team/ft-v1", published_at=utcnow())
        session.add(first)
        session.flush()
        session.add_all(
            [
                ModelVersion(
                    model_id=model.id, version=2, served_name="ft-v2", parent_id=first.id, published_at=utcnow()
                ),
                ModelVersion(model_id=model.id, version=3, served_name="ft-v3-unpublished"),
            ]
        )
    models = api.client.models.list().data
    assert [(m.id, m.object, m.parent) for m in models] == [
        ("strong", "model", None),
        ("team/ft-v1", "model", "strong"),
        ("ft-v2", "model", "team/ft-v1"),
    ]
    assert models[1].created >= models[0].created > -1
    assert api.client.models.retrieve("team/ft-v1") == models[1]
    for missing in ("ft-v3-unpublished", "nope"):
        with pytest.raises(openai.NotFoundError, match="GET /v1/models lists the served names"):
            api.client.models.retrieve(missing)


def test_checkpoints_list_the_published_adapter_of_a_succeeded_job(api: Api) -> None:
    queued = api.client.fine_tuning.jobs.create(model="strong", training_file=_upload(api))
    assert api.client.fine_tuning.jobs.checkpoints.list(queued.id).data == []
    api.client.fine_tuning.jobs.cancel(queued.id)
    published = _finish(
        api, {"fine_tuned_model": "strong-ft-1", "steps": 12, "final_loss": 0.31, "metrics": {"accuracy": 0.75, "n": 4}}
    )
    [checkpoint] = api.client.fine_tuning.jobs.checkpoints.list(published).data
    assert (
        checkpoint.object,
        checkpoint.fine_tuned_model_checkpoint,
        checkpoint.fine_tuning_job_id,
        checkpoint.step_number,
    ) == ("fine_tuning.job.checkpoint", "strong-ft-1", published, 12)
    assert checkpoint.metrics.model_dump(exclude_none=True) == {
        "step": 12,
        "train_loss": 0.31,
        "full_valid_accuracy": 0.75,
        "full_valid_n": 4,
    }
    assert checkpoint.created_at == api.client.fine_tuning.jobs.retrieve(published).finished_at
    unpublished = _finish(api, {"fine_tuned_model": None, "steps": 3})
    assert api.client.fine_tuning.jobs.checkpoints.list(unpublished).data == []
    with pytest.raises(openai.NotFoundError):
        api.client.fine_tuning.jobs.checkpoints.list("ftjob-999")


def test_unreadable_rows_are_listed_not_a_500(api: Api) -> None:
    with api.sessions.begin() as session:
        unreadable = enqueue_job(session, "strong", {"condition": "fine_tune", "train": {"file_id": "x"}}).id
    assert [job.id for job in api.client.fine_tuning.jobs.list()] == [f"ftjob-{unreadable}"]
    shown = api.client.fine_tuning.jobs.retrieve(f"ftjob-{unreadable}")
    assert (shown.model, shown.training_file, shown.status) == ("", "", "queued")


def test_every_training_option_reaches_the_job(api: Api) -> None:
    named = {"epochs", "batch_size", "lr", "eval_every"}
    job = api.client.fine_tuning.jobs.create(
        model="strong",
        training_file=_upload(api),
        validation_file=_upload(api, name="valid.jsonl"),
        hyperparameters={"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.2},
        extra_body={
            "eval_every": 3,
            "lora": {**options.LORA, "target_modules": list(options.LORA["target_modules"])},
            "logconf": options.LOGCONF,
            "product": options.PRODUCT,
            "train": {name: value for name, value in options.TRAIN.items() if name not in named},
        },
    )
    settings = parse_payload("strong", _payload(api.database_url, job.id)).settings()
    assert (
        settings.train.model_dump(),
        settings.lora.model_dump(),
        settings.logconf.model_dump(),
        settings.product.model_dump(),
    ) == (options.TRAIN, options.LORA, options.LOGCONF, options.PRODUCT)
    with pytest.raises(openai.UnprocessableEntityError, match="train.lr: set it as n_epochs") as twice:
        api.client.fine_tuning.jobs.create(model="strong", training_file=_upload(api), extra_body={"train": {"lr": 1}})
    assert twice.value.param == "body"
