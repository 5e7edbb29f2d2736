"""ownership: users see and touch only the sandboxes they created.

Every sandbox is labelled with its creator (``org.sandboxd.owner``). With this plugin, a
user can only see, join, execute in, upload to or remove their own sandboxes; a user
with the admin role (default ``admin``) can do all of that to every sandbox. Someone
else's sandbox id gets exactly the answer an unknown id gets (``NOT_FOUND``).

Settings::

    [plugins.ownership]
    admin_role = "admin"
"""

from __future__ import annotations

from typing import Any, Mapping

from sandboxd import Deny, hookimpl

from ._settings import check_keys, typed


class Ownership:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"admin_role"})
        self.admin_role = typed(settings, "admin_role", str, "admin")

    @hookimpl
    def sandboxd_authorize(self, principal: Any, action: str, sandbox: Any) -> Deny | None:
        if sandbox is None or principal.has_role(self.admin_role):
            return None
        if sandbox.owner != principal.user:
            return Deny("not your sandbox", hide=True)
        return None
