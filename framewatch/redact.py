"""One way to show a URL without its secrets, for logs, dead letters, CLI output and errors.

URLs handed to framewatch carry credentials in three places: userinfo (``user:PASS@``), the
query (``?token=...``, signed CDN URLs) and the path (an RTMP stream key is the last segment of
``rtmp://host/app/KEY``; Slack and Teams webhook URLs hold their token in the path). Everything
that prints a URL it did not make itself goes through :func:`mask_url`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

MASK = "***"
_KEY_IN_LAST_SEGMENT = frozenset({"rtmp", "rtmps", "rtmpt", "rtmpe", "srt"})


def mask_url(url: str, *, keep_path: bool = True) -> str:
    """`url` with userinfo, query values and secret path parts replaced by ``***``.

    keep_path=False cuts the whole path to ``/...`` (URLs whose path is a token, such as
    webhooks); otherwise only an RTMP stream key (the path's last segment when there are two or
    more) is masked. A string that is not a URL (a file path) comes back unchanged.
    """
    try:
        p = urlsplit(url)
        host, port = p.hostname, p.port
    except ValueError:
        return "(unparseable URL)"
    if not p.scheme or not p.netloc:
        return url
    scheme = p.scheme.lower()
    userinfo = f"{MASK}@" if "@" in p.netloc else ""
    if ":" in (host or ""):
        host = f"[{host}]"
    authority = f"{userinfo}{host or ''}{f':{port}' if port else ''}"
    if not keep_path:
        rest = "/..." if p.path not in ("", "/") or p.query else ""
        return f"{p.scheme}://{authority}{rest}"
    path = p.path
    segments = path.split("/")
    if scheme in _KEY_IN_LAST_SEGMENT and len([s for s in segments if s]) >= 2 and segments[-1]:
        segments[-1] = MASK
        path = "/".join(segments)
    query = ""
    if p.query:
        pairs = parse_qsl(p.query, keep_blank_values=True)
        query = "?" + "&".join(f"{k}={MASK}" for k, _v in pairs) if pairs else f"?{MASK}"
    if scheme == "srt" and p.query:
        query = f"?{MASK}"  # srt's streamid/passphrase parameters are secrets as a whole
    return f"{p.scheme}://{authority}{path}{query}"
