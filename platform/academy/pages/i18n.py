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
    # -- navigation and shared words
    "not_found_title": {"en": "Not found", "zh": "找不到"},
    "error_title": {"en": "Something went wrong", "zh": "出错了"},
    "site_nav": {"en": "ChainAcademy", "zh": "ChainAcademy 导航"},
    "my_courses": {"en": "My courses", "zh": "我的课程"},
    "my_labs": {"en": "My labs", "zh": "我的实验"},
    "my_submissions": {"en": "My submissions", "zh": "我的提交"},
    "my_certificates": {"en": "My certificates", "zh": "我的证书"},
    "dashboard": {"en": "Instructor dashboard", "zh": "教师仪表盘"},
    "verify_nav": {"en": "Verify a certificate", "zh": "验证证书"},
    "course": {"en": "Course", "zh": "课程"},
    "institution": {"en": "Institution", "zh": "机构"},
    "cohort": {"en": "Cohort", "zh": "班级"},
    "learner": {"en": "Learner", "zh": "学员"},
    "learners": {"en": "Learners", "zh": "学员"},
    "due": {"en": "Due", "zh": "截止时间"},
    "score": {"en": "Score", "zh": "得分"},
    "late": {"en": "Late", "zh": "迟交"},
    "none": {"en": "None.", "zh": "无。"},
    "cs_passed": {"en": "passed", "zh": "通过"},
    "cs_failed": {"en": "failed", "zh": "未通过"},
    "cs_error": {"en": "error", "zh": "出错"},
    "cs_timeout": {"en": "timed out", "zh": "超时"},
    "cs_killed": {"en": "stopped (limits)", "zh": "被终止（超出限制）"},
    "cs_manual": {"en": "needs manual grading", "zh": "需人工评分"},
    "skip": {"en": "Skip to the content", "zh": "跳到正文"},
    "st_queued": {"en": "queued", "zh": "排队中"},
    "st_running": {"en": "grading", "zh": "评分中"},
    "st_graded": {"en": "graded", "zh": "已评分"},
    "st_failed": {"en": "grading failed", "zh": "评分失败"},
    "st_rejected": {"en": "late, not graded", "zh": "迟交，未评分"},
    # -- learner pages
    "no_courses": {
        "en": "You are not enrolled in any course yet: ask your institution to enroll you.",
        "zh": "你还没有加入任何课程：请联系你的机构为你报名。",
    },
    "labs_graded": {"en": "Labs graded", "zh": "已评分实验"},
    "no_labs": {"en": "No lab has been released to you yet.", "zh": "还没有向你发布任何实验。"},
    "my_submission": {"en": "My latest submission", "zh": "我最近的提交"},
    "not_submitted": {"en": "not submitted", "zh": "未提交"},
    "my_chain": {"en": "My chain", "zh": "我的链"},
    "no_chain": {
        "en": "no chain yet (open the lab in JupyterLab)",
        "zh": "尚无链（在 JupyterLab 中打开实验）",
    },
    "other_chains": {"en": "Other lab chains", "zh": "其他实验链"},
    "no_submissions": {
        "en": "You have not submitted anything yet: use Academy > Submit in JupyterLab.",
        "zh": "你还没有提交任何内容：在 JupyterLab 中使用 Academy > Submit。",
    },
    "submission": {"en": "Submission", "zh": "提交"},
    "submitted_at": {"en": "Submitted", "zh": "提交时间"},
    "late_penalty": {"en": "Late penalty", "zh": "迟交扣分"},
    "problem": {"en": "Problem", "zh": "问题"},
    "tests": {"en": "Tests", "zh": "测试"},
    "test": {"en": "Test", "zh": "测试"},
    "points": {"en": "Points", "zh": "分数"},
    "message": {"en": "Message", "zh": "说明"},
    "feedback": {"en": "Feedback", "zh": "反馈"},
    "issued_at": {"en": "Issued", "zh": "颁发时间"},
    "standing": {"en": "Standing", "zh": "状态"},
    "file": {"en": "File", "zh": "文件"},
    "download": {"en": "Download", "zh": "下载"},
    "share_link": {"en": "Share link", "zh": "分享链接"},
    "make_share": {"en": "Make a share link", "zh": "生成分享链接"},
    "share_made": {
        "en": "Share link made: anyone with it can verify this certificate.",
        "zh": "已生成分享链接：任何拿到链接的人都可以验证这份证书。",
    },
    "no_certificates": {
        "en": "No certificate yet: complete a course to earn one.",
        "zh": "还没有证书：完成一门课程即可获得。",
    },
    # -- instructor dashboard
    "no_cohorts": {"en": "You do not teach any cohort.", "zh": "你没有任教的班级。"},
    "gradebook_csv": {"en": "Gradebook (CSV)", "zh": "成绩册（CSV）"},
    "progress": {"en": "Progress per assignment", "zh": "各作业进度"},
    "submitted": {"en": "Submitted", "zh": "已提交"},
    "graded": {"en": "Graded", "zh": "已评分"},
    "pending": {"en": "waiting", "zh": "等待中"},
    "mean_score": {"en": "Mean score", "zh": "平均分"},
    "missing_subs": {"en": "Missing", "zh": "未提交"},
    "hidden_fail": {"en": "Hidden tests that fail most", "zh": "失败最多的隐藏测试"},
    "heat_caption": {
        "en": "Share of graded learners failing each hidden test (darker: fails more often)",
        "zh": "每个隐藏测试失败的学员比例（颜色越深失败越多）",
    },
    "heat_grid_caption": {
        "en": "Each hidden test for each learner ({n} shown, most failures first): ✓ passed, ✗ failed, — not graded",
        "zh": "每位学员的每个隐藏测试（显示 {n} 人，失败多者在前）：✓ 通过，✗ 失败，— 未评分",
    },
    "no_hidden": {"en": "No graded hidden test yet.", "zh": "还没有已评分的隐藏测试。"},
    "fail_rate": {"en": "Fail rate", "zh": "失败率"},
    "failed_of": {"en": "Failed / graded", "zh": "失败 / 已评分"},
    "common_reason": {"en": "Most common message", "zh": "最常见的说明"},
    "distribution": {"en": "Grade distribution", "zh": "成绩分布"},
    "dist_desc": {
        "en": "{n} graded learners in ten score bands of 10 %; mean {mean}.",
        "zh": "{n} 名已评分学员，按 10% 分为十个分数段；平均 {mean}。",
    },
    "late_by": {"en": "Late by", "zh": "迟交时长"},
    "accepted": {"en": "Graded", "zh": "已计分"},
    "action": {"en": "Action", "zh": "操作"},
    "actions": {"en": "Actions", "zh": "操作"},
    "overdue": {"en": "past the deadline", "zh": "已过截止时间"},
    "regrade": {"en": "Regrade", "zh": "重新评分"},
    "accept_regrade": {"en": "Accept and grade", "zh": "接受并评分"},
    "regrade_all": {"en": "Regrade every submission", "zh": "全部重新评分"},
    "new_deadline": {"en": "Deadline for everyone (UTC)", "zh": "全体截止时间（UTC）"},
    "set_deadline": {"en": "Set deadline", "zh": "设置截止时间"},
    "extend_until": {"en": "until (UTC)", "zh": "延长至（UTC）"},
    "extend": {"en": "Extend for this learner", "zh": "为该学员延期"},
    "certificates": {"en": "Certificates", "zh": "证书"},
    "eligible": {"en": "Ready for a certificate", "zh": "可获得证书"},
    "none_eligible": {
        "en": "Nobody new meets the course's completion rule yet.",
        "zh": "目前没有新的学员达到课程的结业要求。",
    },
    "issue": {"en": "Issue certificates", "zh": "颁发证书"},
    "done_regrade": {"en": "Queued for grading again.", "zh": "已重新排队评分。"},
    "done_deadline": {"en": "Deadline moved.", "zh": "截止时间已修改。"},
    "done_extension": {"en": "Extension granted.", "zh": "已为该学员延期。"},
    "done_issue": {
        "en": "Certificates issued.",
        "zh": "证书已颁发。",
    },
    # outcomes of a failed dashboard action: fixed texts chosen by key, never text from the URL
    "err_bad_date": {
        "en": "That is not a date and time: use the date picker (YYYY-MM-DD HH:MM).",
        "zh": "这不是有效的日期和时间：请使用日期选择器（YYYY-MM-DD HH:MM）。",
    },
    "err_nobody_eligible": {
        "en": "Nobody to issue to: no learner meets the completion rule yet.",
        "zh": "没有可颁发的学员：尚无学员满足结业规则。",
    },
    "err_invalid": {
        "en": "That was not done: a value is not allowed here. Check the form and try again.",
        "zh": "操作未完成：有不允许的取值。请检查表单后重试。",
    },
    "err_forbidden": {
        "en": "That was not done: you may not do this here.",
        "zh": "操作未完成：你无权在此执行该操作。",
    },
    "err_conflict": {
        "en": "That was not done: it clashes with what is already there.",
        "zh": "操作未完成：与已有内容冲突。",
    },
    "err_unavailable": {
        "en": "That was not done: a service academy needs is unreachable. Try again shortly.",
        "zh": "操作未完成：所需的服务暂时无法访问，请稍后重试。",
    },
    "err_failed": {
        "en": "That was not done.",
        "zh": "操作未完成。",
    },
    # -- public verification page
    "verify_title": {"en": "Verify a certificate", "zh": "验证证书"},
    "verify_lead": {
        "en": "Open a share link, or choose, drop or paste a certificate file. Every check is shown "
        "with its outcome. No login needed; offline: academy verify FILE --offline.",
        "zh": "打开分享链接，或选择、拖入、粘贴证书文件。每一项检查都会显示结果。无需登录；"
        "离线验证：academy verify FILE --offline。",
    },
    "choose_file": {"en": "Choose a certificate file", "zh": "选择证书文件"},
    "drop_here": {"en": "…or drop the file here.", "zh": "……或把文件拖到这里。"},
    "paste_json": {"en": "…or paste the certificate (JSON)", "zh": "……或粘贴证书内容（JSON）"},
    "learner_check": {
        "en": "Learner's login to check against the certificate (optional)",
        "zh": "核对学员登录名（可选）",
    },
    "verify": {"en": "Verify", "zh": "验证"},
    "verify_other": {"en": "Verify another certificate", "zh": "验证其他证书"},
    "verdict": {"en": "Verdict", "zh": "结论"},
    "v_valid": {"en": "valid", "zh": "有效"},
    "v_invalid": {"en": "invalid", "zh": "无效"},
    "v_revoked": {"en": "revoked", "zh": "已撤销"},
    "v_suspended": {"en": "suspended", "zh": "已暂停"},
    "v_issuer_unknown": {
        "en": "signature valid, issuer unknown",
        "zh": "签名有效，颁发机构未知",
    },
    "issuer_unknown_note": {
        "en": "unverified: this name is written in the certificate itself, and academy does not "
        "know this issuer or its key; anyone can sign a certificate with a name of their choice",
        "zh": "未经核实：该名称取自证书本身，本平台不认识此颁发机构及其密钥；任何人都可以用自选的名称签署证书",
    },
    "issuer_known_note": {
        "en": "verified: an issuer academy holds, signing with one of its keys",
        "zh": "已核实：本平台登记的颁发机构，使用其密钥签署",
    },
    "wrongly_typed": {
        "en": "This is not a certificate: {why}",
        "zh": "这不是证书：{why}",
    },
    "failed_checks": {"en": "Failed checks", "zh": "未通过的检查"},
    "issuer": {"en": "Issuer", "zh": "颁发机构"},
    "identity_hashed": {
        "en": "identified by a salted hash of their login, never the login itself",
        "zh": "以登录名的加盐哈希标识，证书中不含登录名本身",
    },
    "identity_yes": {"en": "issued to {name}", "zh": "颁发给 {name}"},
    "identity_no": {"en": "not issued to {name}", "zh": "不是颁发给 {name} 的"},
    "achievement": {"en": "Achievement", "zh": "成就"},
    "valid_from": {"en": "Valid from", "zh": "生效时间"},
    "valid_until": {"en": "Valid until", "zh": "失效时间"},
    "evidence": {"en": "Evidence", "zh": "证据"},
    "credential_id": {"en": "Certificate id", "zh": "证书编号"},
    "checks": {"en": "Checks", "zh": "检查项"},
    "check": {"en": "Check", "zh": "检查"},
    "detail": {"en": "Detail", "zh": "详情"},
    "o_pass": {"en": "PASS", "zh": "通过"},
    "o_fail": {"en": "FAIL", "zh": "失败"},
    "o_na": {"en": "N/A", "zh": "不适用"},
    "c_schema": {"en": "format (schema)", "zh": "格式（模式）"},
    "c_dates": {"en": "validity dates", "zh": "有效期"},
    "c_signature": {"en": "signature", "zh": "签名"},
    "c_issuer_key": {"en": "issuer key at issue time", "zh": "颁发时的机构密钥"},
    "c_merkle": {"en": "Merkle inclusion", "zh": "默克尔包含证明"},
    "c_anchor": {"en": "ledger anchor", "zh": "账本锚定"},
    "c_status": {"en": "revocation and suspension status", "zh": "撤销与暂停状态"},
    "share_gone": {
        "en": "No certificate is shared under this link (the learner may have withdrawn it).",
        "zh": "此链接下没有分享的证书（学员可能已撤回）。",
    },
    "not_json": {
        "en": "This is not JSON: paste the whole certificate file ({why}).",
        "zh": "这不是 JSON：请粘贴完整的证书文件（{why}）。",
    },
    "nothing_given": {
        "en": "Choose a certificate file or paste its JSON, then press Verify.",
        "zh": "请选择证书文件或粘贴其 JSON，然后点击“验证”。",
    },
    "too_big": {
        "en": "This file is larger than 1 MiB: a certificate is a few kilobytes; choose the .json file.",
        "zh": "文件超过 1 MiB：证书只有几 KB，请选择 .json 文件。",
    },
    "hidden_raised": {"en": "hidden test raised {ename}", "zh": "隐藏测试抛出了 {ename}"},
    "hidden_failed": {"en": "hidden test failed", "zh": "隐藏测试未通过"},
    "language": {"en": "Language", "zh": "语言"},
    "language_note": {
        "en": "Pages, lab notebooks you fetch from now on, and grader messages.",
        "zh": "页面、此后获取的实验笔记本以及评分反馈都将使用此语言。",
    },
    "follow_browser": {"en": "As my browser", "zh": "跟随浏览器"},
    "save": {"en": "Save", "zh": "保存"},
    "not_a_form": {
        "en": "The form could not be read; reload the page and try again.",
        "zh": "无法读取表单；请刷新页面后重试。",
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
