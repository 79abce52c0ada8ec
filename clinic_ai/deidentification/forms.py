from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from clinic_ai.deidentification.models import DeidProfile


class DeidProfileForm(forms.ModelForm):
    class Meta:
        model = DeidProfile
        fields = ["retain_modified_dates", "retain_patient_characteristics", "clean_descriptors", "ocr_enabled"]
        labels = {
            "retain_modified_dates": "Keep intervals between dates (shift every date by a secret per-patient offset)",
            "retain_patient_characteristics": "Keep sex, age, size and weight",
            "clean_descriptors": "Keep descriptions and comments, cleaned to clinical vocabulary",
            "ocr_enabled": "Look for burned-in text in every image (OCR)",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Save options"))
