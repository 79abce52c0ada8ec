import pytest

from tests.factories import EnsembleFactory, ImageFactory, InferenceResultFactory


@pytest.fixture
def ensemble(project):
    """The project's active ensemble."""
    return EnsembleFactory(project=project)


@pytest.fixture
def make_result(project, ensemble):
    """make_result(p=0.8, spread=0.05, modality="CR", **fields) -> a finished result of the active
    ensemble on a new released image of `project` (rows only: no file, no TensorFlow)."""

    def make(p=0.8, spread=0.05, modality="CR", **fields):
        image = ImageFactory(project=project, modality=modality, study__modality=modality)
        return InferenceResultFactory(
            image=image, ensemble=fields.pop("ensemble", ensemble), p=p, spread=spread, **fields
        )

    return make


@pytest.fixture
def result(make_result):
    return make_result(p=0.8)
