"""Alarm wording in Simplified Chinese (default) and English: kinds, states, severities, notifications.
Listed in the console catalogue (``cloud.console.i18n``), which imports this module: so nothing from the
console is imported here at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.console.i18n import Texts

TEXTS: Texts = {
    "alarm_kind_threshold": {"zh-CN": "越限告警", "en": "Threshold"},
    "alarm_kind_meter_offline": {"zh-CN": "计量表离线", "en": "Meter offline"},
    "alarm_kind_edge_offline": {"zh-CN": "网关离线", "en": "Edge offline"},
    "alarm_kind_leak": {"zh-CN": "疑似漏水", "en": "Suspected leak"},
    "alarm_kind_abnormal_consumption": {"zh-CN": "用量异常", "en": "Abnormal consumption"},
    "alarm_kind_tamper": {"zh-CN": "计量表倒走或被篡改", "en": "Meter running backwards or tampered"},
    "alarm_kind_counter_rollover": {"zh-CN": "计数器翻转", "en": "Counter rollover"},
    "alarm_kind_meter_replaced": {"zh-CN": "计量表更换", "en": "Meter replaced"},
    "alarm_kind_edge_alarm": {"zh-CN": "现场告警", "en": "Edge alarm"},
    "alarm_state_active": {"zh-CN": "未处理", "en": "Active"},
    "alarm_state_acknowledged": {"zh-CN": "已确认", "en": "Acknowledged"},
    "alarm_state_cleared": {"zh-CN": "已恢复", "en": "Cleared"},
    "alarm_severity_info": {"zh-CN": "提示", "en": "Info"},
    "alarm_severity_warning": {"zh-CN": "警告", "en": "Warning"},
    "alarm_severity_critical": {"zh-CN": "严重", "en": "Critical"},
    "alarm_notify_title": {"zh-CN": "【{severity}】{title}", "en": "[{severity}] {title}"},
    "alarm_notify_body": {"zh-CN": "{message}（{at}）", "en": "{message} ({at})"},
}
