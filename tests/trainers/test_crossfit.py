"""Market-making's naive predictions are out-of-sample on every split: cross-fitted on weak_train."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from service.run_cli import worker_env
from service.settings import Settings
from service.store import make_engine, make_session_factory
from service.store.migrate import upgrade
from service.store.models import Example, Job
from trainers.jobs import pipeline_handlers, weak_job
from trainers.jobs.debate_shards import shard_items
from trainers.jobs.payloads import DebateShardPayload
from trainers.jobs.run_rows import model_by_name, model_labels
from trainers.pipeline import parse_run_config, submit_run
from trainers.pipeline.crossfit import cross_fit, crossfit_model_name, fold_assignment
from trainers.pipeline.plan import Member, weak_model_name
from trainers.worker import Worker


def test_folds_partition_the_ids_evenly_and_depend_on_the_seed() -> None:
    ids = list(range(100, 150))
    folds = fold_assignment(ids, 4, seed=0)
    assert sorted(i for fold in folds for i in fold) == ids
    assert sorted(map(len, folds)) == [12, 12, 13, 13]
    assert folds == fold_assignment(list(reversed(ids)), 4, seed=0)  # the order given does not matter
    assert folds != fold_assignment(ids, 4, seed=1)
    assert [len(fold) for fold in fold_assignment([7, 8, 9], 4, seed=0)] == [1, 1, 1]  # never an empty fold
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_assignment(ids, 1, seed=0)


def test_no_fold_model_predicts_an_example_it_was_trained_on() -> None:
    ids = list(range(30))
    trained_on: dict[int, set[int]] = {}  # fold -> the ids its model learned from

    def fit_predict(train: list[int], held_out: list[int], fold: int) -> dict[int, float]:
        trained_on[fold] = set(train)
        return {i: fold / 10 for i in held_out}  # the prediction says which fold model made it

    predictions = cross_fit(ids, 4, seed=3, fit_predict=fit_predict)
    assert sorted(predictions) == ids
    predicted_by = {fold: {i for i, p in predictions.items() if round(p * 10) == fold} for fold in trained_on}
    for fold, learned in trained_on.items():  # each fold model learned from exactly the others
        assert learned == set(ids) - predicted_by[fold] and predicted_by[fold]


@pytest.mark.slow
def test_the_naive_weak_job_stores_cross_fitted_predictions_that_market_making_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, testbed_artifacts: Path
) -> None:
    calls: list[tuple[str, list[str]]] = []  # ("train" | "predict", input texts), in call order
    real_train, real_predict = weak_job.train_classifier, weak_job.predict_proba

    def train_spy(model, inputs, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(("train", [item.text for item in inputs]))
        return real_train(model, inputs, *args, **kwargs)

    def predict_spy(model, inputs, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(("predict", [item.text for item in inputs]))
        return real_predict(model, inputs, *args, **kwargs)

    monkeypatch.setattr(weak_job, "train_classifier", train_spy)
    monkeypatch.setattr(weak_job, "predict_proba", predict_spy)
    data = tmp_path / "boolq"
    data.mkdir()
    rows = [
        {"question": f"is statement {i} true", "title": "T", "answer": i % 3 > 0, "passage": f"Statement {i}."}
        for i in range(40)
    ]
    (data / "validation.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    settings = Settings(database_url=url, vllm_base_url="http://127.0.0.1:9", artifacts_dir=testbed_artifacts)
    sessions = make_session_factory(make_engine(url))
    config = parse_run_config(
        {
            "task": "boolq",
            "data_dir": str(data),
            "conditions": ["no_debate", "market_making"],
            "splits": {"weak_train": 16, "strong_train": 8, "test": 8},
            "ensemble_size": 1,
            "weak": {"train": {"epochs": 1, "batch_size": 8, "max_length": 256}},
        }
    )
    with sessions.begin() as session:
        run_id = submit_run(session, config, strong_model="strong")[0].id
    handlers = pipeline_handlers(worker_env(settings))
    Worker(sessions, {"ingest": handlers["ingest"], "weak": handlers["weak"]}).run(max_jobs=2)

    with sessions() as session:
        naive_job = session.scalars(select(Job).where(Job.kind == "weak", Job.status != "queued")).one()
        member = Member(**naive_job.payload["member"])
        assert (member.context, naive_job.status) == ("none", "succeeded")
        examples = list(session.scalars(select(Example).where(Example.run_id == run_id)))
        naive = model_labels(session, model_by_name(session, weak_model_name(run_id, member)).id)
        out_of_sample = model_labels(session, model_by_name(session, crossfit_model_name(run_id, member)).id)
        shard = session.scalars(
            select(Job).where(Job.kind == "debate", Job.payload["protocol"].as_string() == "market_making")
        ).first()
        sides = {
            example_id: spec.weak_prediction
            for example_id, spec in shard_items(session, DebateShardPayload.model_validate(shard.payload))
        }
    text_of = {e.id: f"Passage: {e.context}\nQuestion: {e.question}\nProposed answer: yes" for e in examples}
    weak_train = {text_of[e.id] for e in examples if e.split == "weak_train"}

    # The naive model: trained on all of weak_train, then predicts every example.
    (first, learned), (second, predicted) = calls[:2]
    assert (first, set(learned), second, len(predicted)) == ("train", weak_train, "predict", 32)
    # Then 4 fold models, each predicting only examples it did not learn from, all of weak_train once.
    folds = calls[2:]
    assert [kind for kind, _ in folds] == ["train", "predict"] * 4
    held_out = [set(texts) for kind, texts in folds if kind == "predict"]
    for (_, learned), (_, predicted) in zip(folds[::2], folds[1::2], strict=True):
        assert not set(learned) & set(predicted) and set(learned) | set(predicted) == weak_train
    assert sorted(len(fold) for fold in held_out) == [4, 4, 4, 4] and set().union(*held_out) == weak_train

    assert sides == out_of_sample and set(out_of_sample) == {e.id for e in examples}
    for example in examples:  # outside weak_train the naive model is already out-of-sample
        if example.split != "weak_train":
            assert out_of_sample[example.id] == naive[example.id]
    assert any(out_of_sample[e.id] != naive[e.id] for e in examples if e.split == "weak_train")
