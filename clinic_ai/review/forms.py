from urllib.parse import urlencode

from django import forms

from clinic_ai.review.models import MAX_COMMENT_CHARS, Decision
from clinic_ai.review.selectors import PRIORITIES, STATES, WorklistQuery, positive_class


class WorklistFilterForm(forms.Form):
    """The worklist's order and filters, read from the query string. A value that is not one of the
    choices is ignored (the default applies), so a hand-edited address still shows a worklist."""

    priority = forms.ChoiceField(choices=list(PRIORITIES.items()), required=False, label="Order")
    rank_class = forms.ChoiceField(required=False, label="Probability of")
    state = forms.ChoiceField(choices=list(STATES.items()), required=False, label="Review")
    ai_class = forms.ChoiceField(required=False, label="AI call for")
    ai_call = forms.ChoiceField(
        choices=[("", "any"), ("positive", "positive"), ("negative", "negative")], required=False, label="AI call"
    )
    modality = forms.ChoiceField(required=False, label="Modality")

    def __init__(self, data, *, project, modalities):
        super().__init__(data)
        self.project = project
        classes = [(name, name) for name in project.class_names]
        self.fields["rank_class"].choices = classes
        self.fields["ai_class"].choices = [("", "any class"), *classes]
        self.fields["modality"].choices = [("", "any"), *((m, m) for m in modalities)]

    def query(self) -> WorklistQuery:
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if value}
        return WorklistQuery(
            priority=data.get("priority", WorklistQuery.priority),
            rank_class=data.get("rank_class", positive_class(self.project)),
            state=data.get("state", WorklistQuery.state),
            ai_class=data.get("ai_class", ""),
            ai_call=data.get("ai_call", ""),
            modality=data.get("modality", ""),
        )


def worklist_querystring(query: WorklistQuery) -> str:
    """The worklist's order and filters as a query string, carried from the worklist to each review."""
    return urlencode({name: value for name, value in query.__dict__.items() if value})


class ReviewDecisionForm(forms.Form):
    result = forms.UUIDField(widget=forms.HiddenInput)
    request_id = forms.UUIDField(required=False, widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=Decision.choices)
    values = forms.MultipleChoiceField(required=False, label="Corrected label")
    comment = forms.CharField(
        required=False, max_length=MAX_COMMENT_CHARS, widget=forms.Textarea(attrs={"rows": 2}), label="Comment"
    )

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["values"].choices = [(name, name) for name in project.class_names]

    def clean(self):
        data = super().clean()
        if data.get("decision") == Decision.DISAGREE and not data.get("values"):
            self.add_error("values", "Pick the corrected label.")
        return data
