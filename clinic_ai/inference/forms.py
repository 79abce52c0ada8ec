import json

from django import forms

from clinic_ai.inference.models import ModelStatus, ModelVersion
from clinic_ai.inference.preprocess import PreprocessSpec

MAX_MODEL_BYTES = 512 * 1024 * 1024


class ModelVersionForm(forms.Form):
    file = forms.FileField(help_text="A Keras 3 .keras file. Lambda layers are refused.")
    name = forms.SlugField(max_length=100)
    version = forms.CharField(max_length=32)
    architecture = forms.CharField(max_length=100, required=False)
    input_height = forms.IntegerField(min_value=1, max_value=4096, initial=28)
    input_width = forms.IntegerField(min_value=1, max_value=4096, initial=28)
    channels = forms.TypedChoiceField(choices=[(1, "1 (grey)"), (3, "3 (colour)")], coerce=int, initial=1)
    mean = forms.FloatField(initial=0.0, help_text="Subtracted after scaling pixels to 0-1")
    std = forms.FloatField(initial=1.0, help_text="Divides after the mean is subtracted")
    last_conv_layer = forms.CharField(
        max_length=200, required=False, help_text="Left empty, the worker finds the last convolution."
    )
    validation = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text='JSON, e.g. {"val_auroc": 0.99}'
    )
    model_card = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(".keras"):
            raise forms.ValidationError("Upload a Keras 3 .keras file.")
        if upload.size > MAX_MODEL_BYTES:
            raise forms.ValidationError("The file is larger than 512 MB.")
        return upload

    def clean_validation(self):
        text = self.cleaned_data["validation"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text, parse_constant=_refuse)
        except (ValueError, RecursionError):
            raise forms.ValidationError("Give the validation figures as a flat JSON object of numbers.") from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) for k, v in value.items()
        ):
            raise forms.ValidationError("Give the validation figures as a flat JSON object of numbers.")
        return value

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["preprocessing"] = PreprocessSpec.from_json(
                {
                    "input_size": [data["input_height"], data["input_width"]],
                    "channels": data["channels"],
                    "mean": data["mean"],
                    "std": data["std"],
                }
            ).to_json()
        except ValueError:
            raise forms.ValidationError("The preprocessing is not valid: the std must be positive.") from None
        return data


def _refuse(constant):
    raise ValueError(constant)


class EnsembleForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=80, help_text="Short name for `manage.py predict --ensemble`")
    version = forms.CharField(max_length=32, initial="1")
    members = forms.ModelMultipleChoiceField(queryset=ModelVersion.objects.none(), widget=forms.CheckboxSelectMultiple)
    weights = forms.CharField(required=False, help_text="Comma-separated, one per member in list order; empty: equal")
    threshold = forms.FloatField(min_value=0.001, max_value=0.999, initial=0.5)
    temperature = forms.FloatField(min_value=0.01, max_value=99, initial=1.0)
    tta = forms.BooleanField(
        required=False,
        label="Test-time augmentation",
        help_text="Average each member over the image and its four 1-pixel shifts (5 passes per image)",
    )
    model_card = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = ModelVersion.objects.filter(project=project, status=ModelStatus.VALID)

    def clean(self):
        data = super().clean()
        members = list(data.get("members") or [])
        text = (data.get("weights") or "").strip()
        try:
            weights = [float(w) for w in text.split(",")] if text else [1.0] * len(members)
        except ValueError:
            raise forms.ValidationError("Weights must be numbers separated by commas.") from None
        if len(weights) != len(members) or not all(0 < w < 1e6 for w in weights):
            raise forms.ValidationError("Give one positive weight per member, or none.")
        data["member_weights"] = list(zip(members, weights, strict=True))
        return data
