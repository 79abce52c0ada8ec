from django.db.models import Q, QuerySet

from clinic_ai.accounts.models import Role, User
from clinic_ai.accounts.selectors import projects_for_user
from clinic_ai.studies.models import Image, ImageStatus
from clinic_ai.studies.selectors import can_see_quarantine, get_image_for_user


def held_images_for_user(user: User) -> QuerySet[Image]:
    """The "needs masking" queue: held images the user uploaded, or held in projects they administer
    (with those being masked by a worker right now)."""
    projects = projects_for_user(user)
    held = Image.objects.filter(status__in=[ImageStatus.HELD, ImageStatus.MASKING], project__in=projects)
    if not user.is_site_admin:
        held = held.filter(
            Q(uploaded_by=user) | Q(project__memberships__user=user, project__memberships__role=Role.ADMIN)
        ).distinct()
    return held.select_related("project", "study").order_by("created")


def get_held_image_for_user(user: User, image_id) -> Image:
    """A held image, for its uploader or an admin; 404 for anyone else, as for any quarantined file."""
    from django.http import Http404

    image = get_image_for_user(user, image_id)
    if not can_see_quarantine(user, image):
        raise Http404("No such image")
    return image
