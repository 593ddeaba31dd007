"""The project (PostHog's team or environment id) of a URL, and the organization that owns it.

`@current` is the caller's own project (its organization's first). An id that is not a number, that no
project has, or whose project belongs to another organization is `Project not found.`: PostHog answers a
project one cannot see as one that does not exist.
"""

from __future__ import annotations

from sextant.control.directory import Directory, Principal
from sextant.faces.posthog.errors import not_found

CURRENT = "@current"


def require_project(raw_id: str, principal: Principal, directory: Directory) -> int:
    """The id of the caller's project named by `raw_id`; PostHogError 404 when it is not one."""
    if raw_id == CURRENT:
        project = directory.posthog_project(principal.org_id)
        if project is None:
            raise not_found()
        return project
    try:
        wanted = int(raw_id)
    except ValueError:
        raise not_found() from None
    if directory.posthog_project_owner(wanted) != principal.org_id:
        raise not_found()
    return wanted
