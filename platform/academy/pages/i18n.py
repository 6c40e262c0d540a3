"""The interface text of academy's pages in English and Simplified Chinese, one catalogue.

The language follows the browser's ``Accept-Language`` (quality values honoured); anything that is
not Chinese falls back to English, so a page never shows a missing key.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    "explorer": {"en": "Chain explorer", "zh": "区块链浏览器"},
    "my_chains": {"en": "My lab chains", "zh": "我的实验链"},
    "no_chains": {
        "en": "You have no lab chain yet: open a lab in JupyterLab to start one.",
        "zh": "你还没有实验链：在 JupyterLab 中打开一个实验即可启动。",
    },
    "lab": {"en": "Lab", "zh": "实验"},
    "status": {"en": "Status", "zh": "状态"},
    "running": {"en": "running", "zh": "运行中"},
    "stopped": {"en": "stopped", "zh": "已停止"},
    "missing": {"en": "missing", "zh": "不存在"},
    "not_running": {
        "en": "This chain is not running: open the lab in JupyterLab to start it again.",
        "zh": "这条链没有在运行：在 JupyterLab 中重新打开实验即可启动。",
    },
    "chain": {"en": "Chain", "zh": "链"},
    "chain_id": {"en": "Chain ID", "zh": "链 ID"},
    "height": {"en": "Height", "zh": "高度"},
    "consensus": {"en": "Consensus", "zh": "共识"},
    "consensus_state": {"en": "Consensus state", "zh": "共识状态"},
    "latest_blocks": {"en": "Latest blocks", "zh": "最新区块"},
    "block": {"en": "Block", "zh": "区块"},
    "hash": {"en": "Hash", "zh": "哈希"},
    "parent": {"en": "Parent", "zh": "父区块"},
    "time": {"en": "Time", "zh": "时间"},
    "transactions": {"en": "Transactions", "zh": "交易"},
    "no_transactions": {"en": "No transactions in this block.", "zh": "该区块没有交易。"},
    "transaction": {"en": "Transaction", "zh": "交易"},
    "receipt": {"en": "Receipt", "zh": "收据"},
    "logs": {"en": "Logs (events)", "zh": "日志（事件）"},
    "no_logs": {"en": "No logs.", "zh": "没有日志。"},
    "from": {"en": "From", "zh": "发送方"},
    "to": {"en": "To", "zh": "接收方"},
    "value": {"en": "Value (wei)", "zh": "金额（wei）"},
    "gas_used": {"en": "Gas used", "zh": "已用 Gas"},
    "outcome": {"en": "Outcome", "zh": "结果"},
    "success": {"en": "success", "zh": "成功"},
    "failure": {"en": "failed", "zh": "失败"},
    "created": {"en": "Contract created", "zh": "创建的合约"},
    "address": {"en": "Address", "zh": "地址"},
    "call": {"en": "Decoded call", "zh": "解码后的调用"},
    "event": {"en": "Decoded event", "zh": "解码后的事件"},
    "topics": {"en": "Topics", "zh": "主题"},
    "data": {"en": "Data", "zh": "数据"},
    "validators": {"en": "Validators", "zh": "验证节点"},
    "validator": {"en": "Validator", "zh": "验证节点"},
    "public_key": {"en": "Public key", "zh": "公钥"},
    "member": {"en": "Member", "zh": "成员"},
    "yes": {"en": "yes", "zh": "是"},
    "no": {"en": "no", "zh": "否"},
    "faults": {"en": "Fault switches in effect", "zh": "生效中的故障开关"},
    "no_faults": {"en": "None: every validator runs normally.", "zh": "无：所有验证节点正常运行。"},
    "halted": {"en": "stopped (stopValidator)", "zh": "已停止（stopValidator）"},
    "byzantine": {"en": "byzantine (setByzantine)", "zh": "拜占庭（setByzantine）"},
    "partitioned": {"en": "partitioned from", "zh": "网络分区，隔离于"},
    "unreachable": {"en": "not answering", "zh": "无响应"},
    "find": {"en": "Find a block or transaction", "zh": "查找区块或交易"},
    "find_label": {
        "en": "Block number or transaction hash",
        "zh": "区块号或交易哈希",
    },
    "go": {"en": "Show", "zh": "查看"},
    "back": {"en": "Back to the chain", "zh": "返回链概览"},
    "not_found": {"en": "Not found on this chain.", "zh": "在这条链上找不到。"},
    "bad_query": {
        "en": "Type a block number (e.g. 12) or a transaction hash (0x followed by 64 hex digits).",
        "zh": "请输入区块号（如 12）或交易哈希（0x 加 64 位十六进制数）。",
    },
    "rpc_error": {
        "en": "The chain did not answer; try again in a moment.",
        "zh": "链没有响应，请稍后再试。",
    },
}


def pick_language(accept_language: str | None) -> str:
    """``zh`` when the browser prefers Chinese over English, else ``en`` (RFC 9110 q-values)."""
    best, best_q = "en", -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = tag.split("-")[0]
        if lang not in LANGUAGES or q <= 0:
            continue
        # ties keep the earlier entry: the browser lists its preference first
        if q > best_q or (q == best_q and position == 0):
            best, best_q = lang, q
    return best


def text(lang: str, key: str) -> str:
    """The message ``key`` in ``lang`` (English when the language has no entry)."""
    entry = MESSAGES[key]
    return entry.get(lang) or entry["en"]
