"""What a client asked the API server for, as RBAC sees it: (apiGroup, resource, verb) triples.

``record(api)`` makes an ApiClient note every call it makes (the generated API classes all go through
``ApiClient.call_api`` with the path template, e.g. ``/apis/batch/v1/namespaces/{namespace}/jobs/{name}``;
custom objects' group, version and resource are filled in);
``triples(calls)`` turns them into what a Role must grant for them.
"""

from __future__ import annotations

from typing import Any


def record(api: Any) -> list[tuple[str, str, dict]]:
    """Make ``api`` append (method, path template, query) of each call to the returned list."""
    calls: list[tuple[str, str, dict]] = []
    original = api.call_api

    def call_api(resource_path, method, path_params=None, query_params=None, *args, **kwargs):
        # CustomObjectsApi's template names the API group and resource as parameters too: fill those in.
        path = resource_path
        for key in ("group", "version", "plural"):
            path = path.replace("{%s}" % key, str(dict(path_params or {}).get(key, "{%s}" % key)))
        calls.append((method, path, dict(query_params or [])))
        return original(resource_path, method, path_params, query_params, *args, **kwargs)

    api.call_api = call_api
    return calls


def triple(method: str, path: str, query: dict) -> tuple[str, str, str]:
    head, _, rest = path.partition("/namespaces/{namespace}/")
    parts = head.strip("/").split("/")  # ["api", "v1"] or ["apis", group, version]
    group = "" if parts[0] == "api" else parts[1]
    resource, *tail = rest.split("/")
    named = bool(tail)
    if len(tail) > 1:
        resource = f"{resource}/{tail[1]}"  # a subresource: pods/log
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if method == "GET":
        verb = "get" if named else ("watch" if query.get("watch") else "list")
    if method == "DELETE":
        verb = "delete" if named else "deletecollection"
    return group, resource, verb


def triples(calls: list[tuple[str, str, dict]]) -> set[tuple[str, str, str]]:
    return {triple(*call) for call in calls}


def role_triples(role: Any) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in role.rules for group in rule.api_groups
            for resource in rule.resources for verb in rule.verbs}
