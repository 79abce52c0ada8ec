"""Response headers every page carries."""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """Adds `settings.CONTENT_SECURITY_POLICY` to every response that does not set its own.

    The policy has no 'unsafe-inline': a script or style injected into a page (a file name or a
    DICOM text that escaped escaping) does not run. Our pages therefore carry no inline script,
    style attribute or event handler; page code lives in static/js. Django 5.2 has no CSP of its
    own, and the policy is one fixed string, so a few lines here replace a dependency.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
