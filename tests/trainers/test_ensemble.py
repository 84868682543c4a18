"""The ensemble step: members' soft labels averaged per example; mismatched members refused."""

import pytest

from trainers.jobs.ensemble_job import average_labels
from trainers.worker import PermanentJobError


def test_average_is_the_mean_soft_label_per_example() -> None:
    members = [{1: 0.9, 2: 0.2, 3: 0.5}, {1: 0.5, 2: 0.4, 3: 0.0}, {1: 0.7, 2: 0.0, 3: 1.0}]
    assert average_labels(members) == pytest.approx({1: 0.7, 2: 0.2, 3: 0.5})


def test_one_member_is_copied() -> None:
    assert average_labels([{4: 0.25}]) == {4: 0.25}


def test_members_with_different_examples_are_refused() -> None:
    with pytest.raises(PermanentJobError, match="different examples"):
        average_labels([{1: 0.9, 2: 0.1}, {1: 0.4}])
