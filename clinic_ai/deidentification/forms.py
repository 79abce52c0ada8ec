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


class AuditFilterForm(forms.Form):
    """Filters of a project's audit trail; the choices are what occurs in the trail."""

    user = forms.ModelChoiceField(queryset=None, required=False, empty_label="Anyone", label="By")
    action = forms.ChoiceField(required=False, label="Event")
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")

    def __init__(self, *args, actions, actors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = actors
        self.fields["user"].label_from_instance = lambda u: u.get_full_name() or u.get_username()
        self.fields["action"].choices = [("", "All events"), *((a, a) for a in actions)]
        self.helper = FormHelper()
        self.helper.form_method = "get"
        self.helper.form_class = "row row-cols-lg-auto g-2 align-items-end mb-3"
        self.helper.add_input(Submit("", "Filter", css_class="btn-secondary"))

    def filters(self) -> dict:
        """Valid filters only: an invalid value (a user not in the trail, a bad date) filters nothing
        rather than failing the page."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})  # only the fields that were valid
        return {
            "actor": data.get("user"),
            "action": data.get("action") or "",
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
