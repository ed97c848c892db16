"""The check API's image URLs go through the project's one network guard (framewatch/netguard)."""

from __future__ import annotations

import pytest

from scoring.api import UrlRefused, fetch_image


@pytest.mark.parametrize(
    "url",
    [
        "http://100.100.100.200/latest/meta-data",  # Alibaba Cloud metadata, CGNAT 100.64/10
        "http://192.88.99.1/x.jpg",  # 6to4 relay anycast
        "http://[2002:7f00:1::1]/x.jpg",  # 6to4 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/x.jpg",  # NAT64 of 169.254.169.254
    ],
)
async def test_addresses_the_old_copy_let_through_are_refused(make_settings, url: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UrlRefused, match="address not allowed"):
        await fetch_image(url, make_settings())
