from django import forms

from clinic_ai.labelling.models import UNGRADABLE


class LabellingSettingsForm(forms.Form):
    readers_per_image = forms.IntegerField(
        min_value=1, max_value=10, help_text="Independent readers who label each image (agreement needs two or more)."
    )
    readers_see_ai_result = forms.BooleanField(
        required=False, label="Readers see the AI result while they label", help_text="Off by default: it biases them."
    )


class AdjudicationForm(forms.Form):
    """The radiologist's final label: one or more of the project's classes, or ungradable."""

    values = forms.MultipleChoiceField()

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["values"].choices = [(name, name) for name in project.class_names] + [(UNGRADABLE, "Ungradable")]
