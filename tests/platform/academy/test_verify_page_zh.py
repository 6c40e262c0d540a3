"""The verification page in Chinese words every check's detail in Chinese: the verifier's own
English lines (kept for the CLI and the API) are translated as the page shows them."""

from __future__ import annotations

import json
import re

from academy.pages.verify_zh import detail_zh

from .test_security_verify import (  # noqa: F401 - the fixtures
    PAGE,
    forged,
    issued,
    verify_api,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


def _details(html: str) -> list[str]:
    table = html.split('id="checks"', 1)[1]
    return [
        cells[2]
        for cells in re.findall(
            r"<tr[^>]*>(?:\s*<td>(.*?)</td>)(?:\s*<td>(.*?)</td>)(?:\s*<td>(.*?)</td>)", table
        )
    ]


def test_every_detail_of_academy_s_certificate_reads_in_chinese(issued) -> None:  # noqa: F811
    world, doc = issued
    english = [c["detail"] for c in verify_api(world, doc)["checks"]]
    html = world.client.post(
        f"{PAGE}/verify", data={"document": json.dumps(doc)}, headers={"Accept-Language": "zh-CN"}
    ).text
    shown = _details(html)
    assert len(shown) == len(english) == 7, shown
    for en, zh in zip(english, shown, strict=True):
        assert CJK.search(zh), f"left in English: {en!r}"
        assert not re.search(r"\b(?:valid|signature|root|block|revoked|included)\b", zh), zh
    # a failing check too: the page names what failed, in Chinese
    tampered = json.loads(json.dumps(doc))
    tampered["validUntil"] = "2000-01-01T00:00:00Z"
    html = world.client.post(
        f"{PAGE}/verify",
        data={"document": json.dumps(tampered)},
        headers={"Accept-Language": "zh-CN"},
    ).text
    assert any("与文档内容不符" in d or "validUntil 不晚于 validFrom" in d for d in _details(html))


def test_an_unknown_detail_is_shown_as_it_is() -> None:
    assert detail_zh("ed25519: point decompression failed") == "ed25519: point decompression failed"
    assert detail_zh("not revoked; not suspended") == "未吊销；未暂停"
    assert detail_zh("not revoked; something new") == "未吊销；something new"
