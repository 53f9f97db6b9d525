"""Console texts in Simplified Chinese (default) and English.

One catalogue, keyed by English identifiers; a missing translation is a test failure, not a blank.
Each domain with pages keeps its own texts (``cloud/<domain>/texts.py``, a ``TEXTS`` dict like ``CORE``) and
is listed in ``_DOMAINS``; a key defined twice is an import-time error, not a silent override.
"""

from __future__ import annotations

from typing import Literal

from cloud.alarms.texts import TEXTS as ALARM_TEXTS
from cloud.billing.ledger_texts import TEXTS as LEDGER_TEXTS
from cloud.billing.texts import TEXTS as BILLING_TEXTS
from cloud.maintenance.texts import TEXTS as MAINTENANCE_TEXTS
from cloud.patrol.texts import TEXTS as PATROL_TEXTS
from cloud.payments.texts import TEXTS as PAYMENT_TEXTS
from cloud.tickets.texts import TEXTS as TICKET_TEXTS

Lang = Literal["zh-CN", "en"]
DEFAULT_LANG: Lang = "zh-CN"
LANGS: tuple[Lang, ...] = ("zh-CN", "en")

Texts = dict[str, dict[Lang, str]]

CORE: Texts = {
    "app_name": {"zh-CN": "EstateHub 物业物联网", "en": "EstateHub"},
    "login": {"zh-CN": "登录", "en": "Sign in"},
    "logout": {"zh-CN": "退出", "en": "Sign out"},
    "username": {"zh-CN": "用户名", "en": "Username"},
    "password": {"zh-CN": "密码", "en": "Password"},
    "login_failed": {"zh-CN": "用户名或密码错误", "en": "Wrong username or password"},
    "overview": {"zh-CN": "概览", "en": "Overview"},
    "site": {"zh-CN": "小区", "en": "Site"},
    "edges": {"zh-CN": "边缘网关", "en": "Edge gateways"},
    "edge": {"zh-CN": "网关", "en": "Edge"},
    "online": {"zh-CN": "在线", "en": "Online"},
    "offline": {"zh-CN": "离线", "en": "Offline"},
    "never_seen": {"zh-CN": "从未上线", "en": "Never seen"},
    "state": {"zh-CN": "状态", "en": "State"},
    "last_seen": {"zh-CN": "最后上报", "en": "Last seen"},
    "backlog": {"zh-CN": "待上传", "en": "Backlog"},
    "gaps": {"zh-CN": "缺失序号", "en": "Missing seqs"},
    "acked_through": {"zh-CN": "已确认至", "en": "Acked through"},
    "buildings": {"zh-CN": "楼栋", "en": "Buildings"},
    "meters": {"zh-CN": "计量表", "en": "Meters"},
    "meter": {"zh-CN": "计量表", "en": "Meter"},
    "equipment": {"zh-CN": "设备", "en": "Equipment"},
    "unit": {"zh-CN": "房屋", "en": "Unit"},
    "kind": {"zh-CN": "类型", "en": "Kind"},
    "electricity": {"zh-CN": "电表", "en": "Electricity"},
    "water": {"zh-CN": "水表", "en": "Water"},
    "role": {"zh-CN": "级别", "en": "Role"},
    "master": {"zh-CN": "总表", "en": "Master"},
    "sub": {"zh-CN": "分表", "en": "Sub-meter"},
    "common": {"zh-CN": "公区表", "en": "Common area"},
    "live_value": {"zh-CN": "实时读数", "en": "Live value"},
    "usage": {"zh-CN": "用量", "en": "Usage"},
    "by_hour": {"zh-CN": "按小时", "en": "By hour"},
    "by_day": {"zh-CN": "按天", "en": "By day"},
    "by_month": {"zh-CN": "按月", "en": "By month"},
    "telemetry": {"zh-CN": "实时遥测", "en": "Live telemetry"},
    "alarms": {"zh-CN": "告警事件", "en": "Alarm events"},
    "time": {"zh-CN": "时间", "en": "Time"},
    "event": {"zh-CN": "事件", "en": "Event"},
    "message": {"zh-CN": "内容", "en": "Message"},
    "no_data": {"zh-CN": "暂无数据", "en": "No data yet"},
    "language": {"zh-CN": "English", "en": "中文"},
    "not_found": {"zh-CN": "未找到或无权访问", "en": "Not found or not permitted"},
}

_DOMAINS: tuple[Texts, ...] = (
    TICKET_TEXTS, MAINTENANCE_TEXTS, BILLING_TEXTS, LEDGER_TEXTS, PAYMENT_TEXTS, PATROL_TEXTS, ALARM_TEXTS,
)  # fmt: skip


def _merge(*catalogues: Texts) -> Texts:
    merged: Texts = {}
    for catalogue in catalogues:
        if twice := sorted(merged.keys() & catalogue.keys()):
            raise RuntimeError(f"console text keys defined twice: {', '.join(twice)}")
        merged |= catalogue
    return merged


CATALOGUE: Texts = _merge(CORE, *_DOMAINS)


def translate(key: str, lang: Lang) -> str:
    return CATALOGUE[key][lang]


def pick_lang(requested: str | None) -> Lang:
    return "en" if requested == "en" else DEFAULT_LANG
