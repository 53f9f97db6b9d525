"""Ticket texts: state, category and priority names, and the notifications tickets send ({placeholders} are
filled with ``str.format``). Listed in the console catalogue (``cloud.console.i18n``), which imports this module:
so nothing from the console is imported here at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.console.i18n import Texts

TEXTS: Texts = {
    "ticket": {"zh-CN": "工单", "en": "Ticket"},
    "tickets": {"zh-CN": "工单", "en": "Tickets"},
    "ticket_state_new": {"zh-CN": "待受理", "en": "New"},
    "ticket_state_assigned": {"zh-CN": "已派单", "en": "Assigned"},
    "ticket_state_accepted": {"zh-CN": "已接单", "en": "Accepted"},
    "ticket_state_in_progress": {"zh-CN": "处理中", "en": "In progress"},
    "ticket_state_verify": {"zh-CN": "待确认", "en": "To verify"},
    "ticket_state_done": {"zh-CN": "已完成", "en": "Done"},
    "ticket_state_follow_up": {"zh-CN": "回访", "en": "Follow-up"},
    "ticket_state_closed": {"zh-CN": "已关闭", "en": "Closed"},
    "ticket_state_cancelled": {"zh-CN": "已取消", "en": "Cancelled"},
    "ticket_category_electrical": {"zh-CN": "电气", "en": "Electrical"},
    "ticket_category_plumbing": {"zh-CN": "给排水", "en": "Plumbing"},
    "ticket_category_lift": {"zh-CN": "电梯", "en": "Lift"},
    "ticket_category_hvac": {"zh-CN": "暖通空调", "en": "HVAC"},
    "ticket_category_fire": {"zh-CN": "消防", "en": "Fire"},
    "ticket_category_general": {"zh-CN": "综合维修", "en": "General"},
    "ticket_priority_urgent": {"zh-CN": "紧急", "en": "Urgent"},
    "ticket_priority_high": {"zh-CN": "高", "en": "High"},
    "ticket_priority_normal": {"zh-CN": "普通", "en": "Normal"},
    "ticket_priority_low": {"zh-CN": "低", "en": "Low"},
    "ticket_source_alarm": {"zh-CN": "告警", "en": "Alarm"},
    "ticket_source_owner": {"zh-CN": "业主报修", "en": "Owner request"},
    "ticket_source_staff": {"zh-CN": "员工报事", "en": "Staff"},
    "ticket_source_patrol": {"zh-CN": "巡更异常", "en": "Patrol exception"},
    "ticket_source_maintenance": {"zh-CN": "设备保养", "en": "Maintenance check"},
    "ticket_sla_response": {"zh-CN": "响应时限", "en": "Response"},
    "ticket_sla_resolution": {"zh-CN": "解决时限", "en": "Resolution"},
    "ticket_note_state": {
        "zh-CN": "工单 #{id}「{title}」状态：{state}",
        "en": 'Ticket #{id} "{title}" is now: {state}',
    },
    "ticket_note_waiting": {
        "zh-CN": "工单 #{id}「{title}」等待您的回复：{reason}",
        "en": 'Ticket #{id} "{title}" waits for you: {reason}',
    },
    "ticket_note_assigned": {
        "zh-CN": "新派工单 #{id}「{title}」，请在 {minutes} 分钟内接单",
        "en": 'Ticket #{id} "{title}" is assigned to you; accept within {minutes} minutes',
    },
    "ticket_note_offered": {
        "zh-CN": "可抢工单 #{id}「{title}」，先接先得",
        "en": 'Ticket #{id} "{title}" is open to grab: first to accept gets it',
    },
    "ticket_note_no_technician": {
        "zh-CN": "工单 #{id}「{title}」无可派技师（{category}），请人工派单",
        "en": 'No technician for ticket #{id} "{title}" ({category}); dispatch it by hand',
    },
    "ticket_note_sla_warning": {
        "zh-CN": "工单 #{id}「{title}」{clock}即将超时",
        "en": 'Ticket #{id} "{title}": {clock} target is about to be missed',
    },
    "ticket_note_sla_breach": {
        "zh-CN": "工单 #{id}「{title}」{clock}已超时（一级升级）",
        "en": 'Ticket #{id} "{title}": {clock} target missed (escalation level 1)',
    },
    "ticket_note_sla_level2": {
        "zh-CN": "工单 #{id}「{title}」{clock}严重超时（二级升级）",
        "en": 'Ticket #{id} "{title}": {clock} target far exceeded (escalation level 2)',
    },
}
