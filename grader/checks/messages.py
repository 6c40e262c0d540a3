"""The checkers' failure messages in every language a lab is written in.

A hidden test cell is the same code in every version of a lab, so a checker cannot be told its
language by its caller: it asks :func:`language`, which reads what the grading run (or the
learner's own kernel) was set up with (see :mod:`grader.language`). Each message site names a
key of :data:`MESSAGES` and its fields; a language without an entry says it in English, so a
missing translation shows English rather than breaking a grade.
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.language import CHINESE, ENGLISH, LANGUAGE_ENV, LANGUAGE_FILE, normalise

MESSAGES: dict[str, dict[str, str]] = {
    # hashing
    "not_plain": {
        ENGLISH: "{what} is a {kind}; return plain data (bytes, str, int, list, dict, ...)",
        CHINESE: "{what}是 {kind} 类型；请返回普通数据（bytes、str、int、list、dict 等）",
    },
    "the_result": {ENGLISH: "the result", CHINESE: "返回值"},
    "the_result_of": {ENGLISH: "the result of {call}", CHINESE: "{call} 的返回值"},
    "the_function": {ENGLISH: "the function", CHINESE: "该函数"},
    "not_a_function": {
        ENGLISH: "{shown} is not a function (got {kind})",
        CHINESE: "{shown} 不是函数（得到的是 {kind}）",
    },
    "returned": {ENGLISH: "returned {value}", CHINESE: "返回了 {value}"},
    "raised": {ENGLISH: "raised {kind}", CHINESE: "抛出了 {kind}"},
    "raised_detail": {ENGLISH: "raised {kind}: {detail}", CHINESE: "抛出了 {kind}：{detail}"},
    "should_raise": {
        ENGLISH: "{call} {said}, but it should raise {kind}",
        CHINESE: "{call} {said}，但应当抛出 {kind}",
    },
    "raised_expected": {
        ENGLISH: "{call} {said}; expected {want}",
        CHINESE: "{call} {said}；期望结果为 {want}",
    },
    "returned_expected": {
        ENGLISH: "{call} returned {got}, but expected {want}",
        CHINESE: "{call} 返回了 {got}，期望结果为 {want}",
    },
    # consensus
    "not_an_engine": {
        ENGLISH: "expected a ConsensusEngine subclass or 'module:Class', got {kind}",
        CHINESE: "需要一个 ConsensusEngine 子类或 'module:Class' 字符串，得到的是 {kind}",
    },
    "under_fault": {
        ENGLISH: "under '{fault}' (seed {seed})",
        CHINESE: "在“{fault}”故障场景下（种子 {seed}）",
    },
    "engine_raised": {
        ENGLISH: "the engine raised {error} {where} at t={time}s; replay: {replay}",
        CHINESE: "共识引擎{where}于 t={time}s 抛出了 {error}；复现方法：{replay}",
    },
    "safety": {
        ENGLISH: "safety: {problem} {where}; replay: {replay}",
        CHINESE: "安全性：{where}{problem}；复现方法：{replay}",
    },
    "liveness": {
        ENGLISH: "liveness: {where} honest validators reached heights {reached}, not {goal}, "
        "by t={until}s; replay: {replay}",
        CHINESE: "活性：{where}，到 t={until}s 时诚实验证节点的高度为 {reached}，未达到 {goal}；"
        "复现方法：{replay}",
    },
    "chain_wrong_type": {
        ENGLISH: "validator {index} committed a {kind} at height {height}",
        CHINESE: "验证节点 {index} 在高度 {height} 提交了一个 {kind} 对象",
    },
    "chain_malformed": {
        ENGLISH: "validator {index} holds a malformed block at height {height}",
        CHINESE: "验证节点 {index} 在高度 {height} 的区块格式错误",
    },
    "chain_unlinked": {
        ENGLISH: "validator {index}'s block at height {height} does not link to its parent",
        CHINESE: "验证节点 {index} 在高度 {height} 的区块没有链接到其父区块",
    },
    "chain_fork": {
        ENGLISH: "fork at height {height}: validator {a} committed {hash_a}, "
        "validator {b} committed {hash_b}",
        CHINESE: "高度 {height} 出现分叉：验证节点 {a} 提交了 {hash_a}，验证节点 {b} 提交了 {hash_b}",
    },
    # contracts
    "vyper_one_text": {
        ENGLISH: "pass Vyper source as one text",
        CHINESE: "请把 Vyper 源码作为一个字符串传入",
    },
    "does_not_compile": {
        ENGLISH: "the contract does not compile: {error}",
        CHINESE: "合约编译失败：{error}",
    },
    "must_be_text": {
        ENGLISH: "{what} must be text (str), got {kind}",
        CHINESE: "{what}必须是文本（str），得到的是 {kind}",
    },
    "the_contract_source": {ENGLISH: "the contract source", CHINESE: "合约源码"},
    "deploy_failed": {
        ENGLISH: "deploying {name} failed: {reason}",
        CHINESE: "部署 {name} 失败：{reason}",
    },
    "deploy_reverted": {ENGLISH: "deploying {name} reverted", CHINESE: "部署 {name} 时交易回滚"},
    "deploy_no_address": {
        ENGLISH: "deploying {name} gave no contract address",
        CHINESE: "部署 {name} 没有得到合约地址",
    },
    "call_failed": {ENGLISH: "{label} failed: {reason}", CHINESE: "{label} 调用失败：{reason}"},
    "call_reverted": {ENGLISH: "{label} reverted", CHINESE: "{label} 交易回滚"},
    "send_failed": {
        ENGLISH: "sending {value} wei to {to} failed: {reason}",
        CHINESE: "向 {to} 转账 {value} wei 失败：{reason}",
    },
    "call_returned": {
        ENGLISH: "{call} returned {got}, expected {want}",
        CHINESE: "{call} 返回了 {got}，期望结果为 {want}",
    },
    "balance": {
        ENGLISH: "balance of {who} is {got} wei, expected {want}",
        CHINESE: "{who} 的余额是 {got} wei，期望为 {want}",
    },
    "reverted_other_reason": {
        ENGLISH: "{label} reverted, but not with {reason}: {error}",
        CHINESE: "{label} 回滚了，但原因不是 {reason}：{error}",
    },
    "should_revert": {
        ENGLISH: "{label} should revert when called by {sender}, but it succeeded",
        CHINESE: "{sender} 调用 {label} 时应当回滚，但调用成功了",
    },
    "no_gas_known": {
        ENGLISH: "no transaction of {key} was sent, so its gas is unknown",
        CHINESE: "没有发送过 {key} 的交易，无法得知其 gas 用量",
    },
    "too_much_gas": {
        ENGLISH: "{key} used {used} gas, more than the {limit} allowed",
        CHINESE: "{key} 用了 {used} gas，超过了允许的 {limit}",
    },
    "no_such_function": {
        ENGLISH: "{contract} has no function {function} (it has: {names})",
        CHINESE: "{contract} 没有函数 {function}（现有函数：{names}）",
    },
    "none": {ENGLISH: "none", CHINESE: "无"},
    "the_contract": {ENGLISH: "the contract", CHINESE: "该合约"},
    "bad_arguments": {
        ENGLISH: "{label} cannot take {args}: {reason}",
        CHINESE: "{label} 不接受参数 {args}：{reason}",
    },
}


def language() -> str:
    """The language of this run: the environment's :data:`LANGUAGE_ENV` (a learner's kernel),
    else the :data:`LANGUAGE_FILE` the grader put in the working directory, else English."""
    chosen = normalise(os.environ.get(LANGUAGE_ENV))
    if chosen is None:
        try:
            chosen = normalise(Path(LANGUAGE_FILE).read_text(encoding="utf-8")[:16])
        except (OSError, UnicodeDecodeError):
            chosen = None
    return chosen or ENGLISH


def say(key: str, /, **fields: object) -> str:
    """Message ``key`` in the run's language, its ``{fields}`` filled in."""
    entry = MESSAGES[key]
    return (entry.get(language()) or entry[ENGLISH]).format(**fields)
