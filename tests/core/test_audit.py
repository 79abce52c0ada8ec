import pytest

from clinic_ai.core.models import AuditEvent
from clinic_ai.core.services import audit_record

pytestmark = pytest.mark.django_db


def test_audit_events_are_append_only():
    event = audit_record(action="test.event", data={"count": 1})
    event.action = "changed"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"
