from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from clinic_ai.studies.models import ImageStatus
from clinic_ai.studies.selectors import WORKLIST_SORTS


class WorklistFilterForm(forms.Form):
    project = forms.ModelChoiceField(queryset=None, required=False, empty_label="All projects")
    status = forms.ChoiceField(choices=[("", "Any status"), *ImageStatus.choices], required=False)
    modality = forms.CharField(max_length=16, required=False)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    patient = forms.CharField(
        max_length=64, required=False, label="Patient", widget=forms.TextInput(attrs={"placeholder": "Pseudonym"})
    )
    sort = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in WORKLIST_SORTS.items()], required=False, label="Sort by"
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        self.helper = FormHelper()
        self.helper.form_method = "get"
        self.helper.form_class = "row row-cols-lg-auto g-2 align-items-end mb-3"
        self.helper.add_input(Submit("", "Filter", css_class="btn-secondary"))
