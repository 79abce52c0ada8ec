"""Tiny real Keras models registered through the app's own services (no mocks of TensorFlow)."""

import pytest

from clinic_ai.accounts.models import Project


def _tiny_model(path, *, nested: bool, bias: float):
    import keras

    inputs = keras.Input((28, 28, 1))
    if nested:
        base_in = keras.Input((28, 28, 1))
        features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(base_in)
        base = keras.Model(base_in, features, name="base")
        x = base(inputs)
    else:
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(bias), name="logit")(x)
    model = keras.Model(inputs, outputs)
    model.save(path)
    return path


@pytest.fixture
def tiny_ensemble(tmp_path):
    """tiny_ensemble(project) -> an active two-member ensemble (a plain and a nested CNN) in project."""
    from clinic_ai.inference import services, worker

    def make(project: Project, *, slug="tiny"):
        members = []
        for name, nested, bias in (("plain", False, 0.5), ("nested", True, -0.2)):
            path = _tiny_model(tmp_path / f"{slug}-{name}.keras", nested=nested, bias=bias)
            model = services.model_version_register(
                actor=None,
                project=project,
                source=path,
                name=name,
                version="1" if slug == "tiny" else slug,
                preprocessing={"input_size": [28, 28], "channels": 1, "mean": 0.0, "std": 1.0},
                class_names=list(project.class_names),
                task_type=project.task_type,
            )
            worker.model_version_validate(model_version_id=model.pk)
            model.refresh_from_db()
            members.append((model, 1.0))
        ensemble = services.ensemble_create(actor=None, project=project, name="Tiny", slug=slug, members=members)
        return services.ensemble_activate(actor=None, ensemble=ensemble)

    return make
