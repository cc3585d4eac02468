"""POST /v1/upload_cookies, GET /v1/cookies, DELETE /v1/cookies[/{domain}].

Cookie values are never sent back. The middleware requires the API key when one is set.
"""

from __future__ import annotations

from aiohttp import web

from g4f_server import errors
from g4f_server.appkeys import CONFIG, KEY_NAME
from g4f_server.controls.apikeys import KEYRING
from g4f_server.pipeline.services import read_multipart
from g4f_server.schemas.media import CookieUpload
from g4f_server.storage.cookies import (
    ACCESS_TOKEN,
    CookieFileError,
    CookieLimitError,
    merge,
    parse_cookie_file,
)
from g4f_server.storage.interfaces import COOKIES
from g4f_server.web.handlers import request_body
from g4f_server.web.jsonio import json_response


@request_body(CookieUpload, "multipart/form-data")
async def upload_cookies(request: web.Request) -> web.Response:
    """Upload browser cookie exports (JSON) or HAR files for providers that need a login."""
    _admin_only(request, "Uploading provider cookies")
    app = request.app
    _, files = await read_multipart(request, app[CONFIG].max_upload_size)
    if not files:
        raise errors.InvalidRequestError(
            "Attach one or more cookie files (multipart field 'files')", param="files"
        )
    # Every file is parsed before anything is written: one bad file stores nothing.
    jars = []
    for upload in files:
        try:
            jars.append(parse_cookie_file(upload.data))
        except CookieFileError as exc:
            raise errors.InvalidRequestError(
                f"Cookie file '{upload.filename}' rejected: {exc}",
                param="files",
                code="invalid_cookie_file",
            ) from None
    names = [upload.filename for upload in files]
    jar = merge(jars)
    config = app[CONFIG]
    # One file (or Redis field) per domain: a HAR naming thousands must not make thousands.
    if len(jar) > config.cookie_max_upload_domains:
        raise _too_many_domains(
            f"The upload names {len(jar)} cookie domains "
            f"(limit {config.cookie_max_upload_domains}, cookie_max_upload_domains)"
        )
    try:
        await app[COOKIES].replace(jar, names, max_domains=config.cookie_max_domains)
    except CookieLimitError as exc:
        raise _too_many_domains(
            f"Storing this upload would keep {exc.total} cookie domains "
            f"(limit {exc.limit}, cookie_max_domains); delete some first "
            "(DELETE /v1/cookies/{domain})"
        ) from None
    return json_response(
        {
            "object": "list",
            "data": [
                {
                    "filename": upload.filename,
                    "domains": sorted(jar),
                    "cookies": sum(len(c) for c in jar.values()),
                    "access_token": any(ACCESS_TOKEN in c for c in jar.values()),
                }
                for upload, jar in zip(files, jars, strict=True)
            ],
        }
    )


def _admin_only(request: web.Request, what: str) -> None:
    """The cookies log the whole server into accounts: on a server with keys, only an
    admin key manages them (a server without keys is open to its own host only: cors)."""
    keyring = request.app.get(KEYRING)
    if keyring is not None:
        keyring.check_admin(request.get(KEY_NAME), what)


def _too_many_domains(message: str) -> errors.PayloadTooLargeError:
    return errors.PayloadTooLargeError(message, param="files", code="too_many_cookie_domains")


async def list_cookies(request: web.Request) -> web.Response:
    """List uploaded cookies: domains and cookie names only, never values."""
    _admin_only(request, "Listing provider cookies")
    return json_response({"object": "list", "data": request.app[COOKIES].summary()})


async def delete_cookies(request: web.Request) -> web.Response:
    """Delete the uploaded cookies of one domain, or of every domain."""
    _admin_only(request, "Deleting provider cookies")
    domain = request.match_info.get("domain")
    deleted = await request.app[COOKIES].delete(domain)
    if domain is not None and not deleted:
        raise errors.NotFoundError(f"No cookies stored for '{domain}'", param="domain")
    return json_response({"deleted": deleted, "domain": domain})
