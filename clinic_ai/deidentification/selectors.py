from django.db.models import QuerySet

from clinic_ai.accounts.models import User
from clinic_ai.studies.models import Image, ImageStatus
from clinic_ai.studies.selectors import can_see_quarantine, get_image_for_user, images_visible_to


def held_images_for_user(user: User) -> QuerySet[Image]:
    """The "needs masking" queue: the held images the user may see (their uploads, or all of a
    project they administer), with those a worker is masking right now."""
    held = images_visible_to(user).filter(status__in=[ImageStatus.HELD, ImageStatus.MASKING])
    return held.select_related("project").order_by("created")


def get_held_image_for_user(user: User, image_id) -> Image:
    """A held image, for its uploader or an admin; 404 for anyone else, as for any quarantined file."""
    from django.http import Http404

    image = get_image_for_user(user, image_id)
    if not can_see_quarantine(user, image):
        raise Http404("No such image")
    return image
