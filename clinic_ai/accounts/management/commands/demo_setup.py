"""Create the demo project, one demo user per role and the demo ensemble (trained files shipped in
clinic_ai/inference/demo/); with --images N, N labelled demo images too (`make run` asks for them).
Safe to run again: it changes nothing that exists."""

import os

from django.core.management.base import BaseCommand
from django.db import transaction

from clinic_ai.accounts.models import Project, Role, TaskType, User
from clinic_ai.accounts.services import membership_set, project_create
from clinic_ai.inference.demo import demo_ensemble_install
from clinic_ai.pipeline.demo import demo_images_install

DEMO_PROJECT = "Pneumonia (chest X-ray)"
DEMO_USERS = (
    ("demo-admin", Role.ADMIN, True),
    ("demo-radiologist", Role.RADIOLOGIST, False),
    ("demo-clinician", Role.CLINICIAN, False),
)


class Command(BaseCommand):
    help = "Create the demo project and demo users (password from DEMO_PASSWORD, default 'clinic-ai-demo')."

    def add_arguments(self, parser):
        parser.add_argument(
            "--images",
            type=int,
            default=0,
            help="Upload this many PneumoniaMNIST validation images with their labels (once, into an empty project).",
        )

    def handle(self, *args, **options):
        project, ensemble, password = self._project_users_ensemble()
        self.stdout.write(f"Demo project: {DEMO_PROJECT} (ensemble {ensemble.label}, `{ensemble.slug}`)")
        for username, role, _ in DEMO_USERS:
            self.stdout.write(f"  {role.label:<22} {username} / {password}")
        if options["images"] > 0:
            # Outside the transaction above: each step commits as it would in the pipeline.
            counts = demo_images_install(
                project=project, uploader=User.objects.get(username=DEMO_USERS[0][0]), count=options["images"]
            )
            if counts["released"]:
                self.stdout.write(
                    f"Demo images: {counts['released']} released and labelled at upload, "
                    f"{counts['queued']} queued for the ensemble (the gpu worker runs them)."
                )

    @transaction.atomic
    def _project_users_ensemble(self):
        password = os.environ.get("DEMO_PASSWORD") or "clinic-ai-demo"
        project = Project.objects.filter(name=DEMO_PROJECT).first()
        if project is None:
            project = project_create(
                actor=None,
                name=DEMO_PROJECT,
                description="Is there pneumonia on this chest X-ray? Demo project with the PneumoniaMNIST classes.",
                task_type=TaskType.BINARY,
                class_names=["normal", "pneumonia"],
            )
        for username, role, site_admin in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": site_admin, "is_superuser": site_admin}
            )
            if created:
                user.set_password(password)
                user.save()
            if not project.memberships.filter(user=user).exists():
                membership_set(actor=None, project=project, user=user, role=role)
        ensemble = demo_ensemble_install(project=project)
        return project, ensemble, password
