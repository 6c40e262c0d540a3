"""The verifier's check details in Chinese, for the verification page.

``academy.credentials.verify`` words each check's detail in English for the command line and the
API, where the words are part of the output others parse. The page translates them as it shows
them: each rule below is one detail the verifier writes, its variable parts captured and put into
the Chinese sentence; a detail no rule matches (a library's own exception text, say) is shown as
it is. A detail may join several with "; " (the signature check, one per proof).
"""

from __future__ import annotations

import re

T = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
"""An instant as the verifier writes it."""

RULES: list[tuple[str, str]] = [
    # schema
    (r"VC 2\.0 (.+)", r"符合 VC 2.0（\1）"),
    (r"not a JSON object", "不是 JSON 对象"),
    (r"unknown proof type (.+)", r"未知的证明类型 \1"),
    # dates
    (rf"valid from {T} until {T}", r"有效期自 \1 至 \2"),
    (rf"valid from {T}", r"自 \1 起有效"),
    (rf"no validFrom until {T}", r"未给出 validFrom，有效期至 \1"),
    (r"no validFrom", "未给出 validFrom"),
    (r"validUntil is not after validFrom", "validUntil 不晚于 validFrom"),
    (rf"not yet valid: valid from {T}", r"尚未生效：自 \1 起有效"),
    (rf"expired: valid until {T}", r"已过期：有效期至 \1"),
    (r"signature dated in the future \((.+)\)", r"签名时间在未来（\1）"),
    # signature
    (r"(\S+) signature by (\S+)\.\.\.", r"\2... 的 \1 签名有效"),
    (r"the (\S+) signature does not match the document", r"\1 签名与文档内容不符"),
    (r"no DataIntegrityProof signature", "没有 DataIntegrityProof 签名"),
    (r"more than one (\S+) proof", r"\1 证明多于一个"),
    (r"the proofs are signed by different keys", "各证明由不同的密钥签署"),
    (r"the proofs carry different creation times", "各证明的创建时间不一致"),
    (r"signed by another key than the one given", "签名所用的密钥不是给定的密钥"),
    (r"proof has no (\S+)", r"证明缺少 \1"),
    # issuer key
    (rf"issuer key valid {T} \.\. now", r"颁发机构密钥自 \1 起有效，目前仍有效"),
    (rf"issuer key valid {T} \.\. {T}", r"颁发机构密钥有效期 \1 至 \2"),
    (
        rf"signed {T}, after the key was rotated out \({T}\)",
        r"签名时间 \1 晚于该密钥轮换停用的时间（\2）",
    ),
    (r"key (\S+)\.\.\. is not one of the issuer's keys", r"密钥 \1... 不属于该颁发机构"),
    (rf"key was revoked at {T}, before this signature", r"密钥已于 \1 吊销，早于本签名"),
    (rf"signed {T}, before the key's period began", r"签名时间 \1 早于该密钥的启用时间"),
    (r"no verified signature to attribute", "没有可归属的已验证签名"),
    (r"the issuer is the did:key that signed", "颁发机构就是签名的 did:key"),
    (
        r"a key the issuer's DID document lists \(the credential has no anchor\)",
        "颁发机构 DID 文档中列出的密钥（该证书没有上链锚定）",
    ),
    (
        r"the key given with --key \(no ledger anchor to check it against\)",
        "通过 --key 给定的密钥（没有可供核对的账本锚定）",
    ),
    (
        r"nothing says whose key this is: give the issuer's key with --key",
        "无法确定这是谁的密钥：请用 --key 给出颁发机构的密钥",
    ),
    (r"cannot read the issuer's keys from the ledger: (.+)", r"无法从账本读取颁发机构的密钥：\1"),
    (r"the issuer's registry records no keys for (.+)", r"颁发机构登记中没有 \1 的密钥"),
    # merkle inclusion
    (
        r"leaf included under root (\S+)\.\.\. \((\d+) steps\)",
        r"该证书包含在根 \1... 之下（路径 \2 步）",
    ),
    (r"no ledger anchor proof \(signature-only credential\)", "没有账本锚定证明（仅含签名的证书）"),
    (r"more than one ledger anchor proof", "账本锚定证明多于一个"),
    (r"malformed Merkle path: (.+)", r"默克尔路径格式错误：\1"),
    (
        r"the path does not lead from this credential to the batch root",
        "该路径不能从本证书通向批次根",
    ),
    # ledger anchor
    (
        rf"root in block (\d+) \({T}\), finality signatures checked \((cached|live) evidence, "
        rf"as of block (\d+)(?: \({T}\))?; (.+)\)",
        r"根位于区块 \1（\2），最终性签名已核验（\3 证据，截至区块 \4；\6）",
    ),
    (
        r"root not on the ledger \(as of block (\d+)(?: \(" + T + r"\))?\)",
        r"账本上没有该根（截至区块 \1）",
    ),
    (r"the root was anchored for another issuer", "该根是为另一颁发机构锚定的"),
    (r"cannot check the ledger: (.+)", r"无法核对账本：\1"),
    (
        r"anchored on another ledger than the trusted one \(genesis differs\)",
        "锚定在受信任账本之外的另一账本上（创世区块不同）",
    ),
    (
        r"the anchor names another block or transaction than the ledger records",
        "锚定信息所指的区块或交易与账本记录不符",
    ),
    (
        r"genesis as the evidence states it, not pinned: pass --genesis to pin it",
        "创世区块取自证据本身，未固定：可用 --genesis 固定",
    ),
    (r"genesis pinned", "创世区块已固定"),
    (r"genesis pinned by the issuer's DID document", "创世区块由颁发机构的 DID 文档固定"),
    # status
    (r"the credential has no credentialStatus", "该证书没有 credentialStatus"),
    (r"not revoked", "未吊销"),
    (r"not suspended", "未暂停"),
    (r"revoked \(status list (.+), index (\d+)\)", r"已吊销（状态列表 \1，索引 \2）"),
    (r"suspended \(status list (.+), index (\d+)\)", r"已暂停（状态列表 \1，索引 \2）"),
    (r"no source for status lists", "没有状态列表来源"),
    (r"status list: (.+)", r"状态列表：\1"),
    (r"not checked: the credential is malformed", "未检查：证书格式错误"),
    (r"malformed credential: (.+)", r"证书格式错误：\1"),
]
_COMPILED = [(re.compile(rf"^{pattern}$"), zh) for pattern, zh in RULES]
_EVIDENCE = {"cached": "缓存的", "live": "实时"}


def _one(detail: str) -> str | None:
    for pattern, zh in _COMPILED:
        m = pattern.match(detail)
        if m is not None:
            out = m.expand(zh)
            for word, chinese in _EVIDENCE.items():
                out = out.replace(f"（{word} 证据", f"（{chinese}证据", 1)
            return out
    return None


def detail_zh(detail: str) -> str:
    """``detail`` in Chinese where a rule knows it; a detail that joins several with "; " (the
    signature check, one per proof) is translated part by part."""
    whole = _one(detail)
    if whole is not None:
        return _inner(whole)
    return "；".join(_inner(_one(part) or part) for part in detail.split("; "))


def _inner(text: str) -> str:
    """A translated detail whose captured tail is itself a detail (the ledger's trust note)."""
    head, sep, tail = text.rpartition("；")
    if sep and tail.endswith("）"):
        inner = _one(tail[:-1])
        if inner is not None:
            return f"{head}；{inner}）"
    return text
