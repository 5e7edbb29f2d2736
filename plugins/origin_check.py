"""origin_check: kept so existing configurations still load; the check is built in.

The daemon now checks every request's ``Origin`` and ``Host`` itself, on by default
(:class:`sandboxd.http.OriginPolicy`, ``server.allowed_origins`` and
``server.allowed_hosts``). Origins this plugin's table lists are added to
``server.allowed_origins``::

    [plugins.origin_check]
    allowed_origins = ["https://notebooks.example.com"]
"""

from __future__ import annotations

from typing import Any, Mapping

from ._settings import check_keys, str_list


class OriginCheck:
    def __init__(self, settings: Mapping[str, Any]) -> None:
        check_keys(settings, {"allowed_origins"})
        self.allowed = tuple(str_list(settings, "allowed_origins"))
