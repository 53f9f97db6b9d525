"""Texts of the collection report and its exports (``report_*``) and of the printable bill (``print_*``).

Listed in the console catalogue (``cloud.console.i18n``), which imports this module."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.console.i18n import Texts

TEXTS: Texts = {
    "report_title": {"zh-CN": "收费统计", "en": "Collection report"},
    "report_as_of": {"zh-CN": "截至", "en": "as of"},
    "report_period": {"zh-CN": "账期", "en": "Period"},
    "report_bills": {"zh-CN": "账单数", "en": "Bills"},
    "report_receivable": {"zh-CN": "应收(元)", "en": "Receivable (yuan)"},
    "report_waived": {"zh-CN": "减免(元)", "en": "Waived (yuan)"},
    "report_received": {"zh-CN": "实收(元)", "en": "Received (yuan)"},
    "report_outstanding": {"zh-CN": "未收(元)", "en": "Outstanding (yuan)"},
    "report_overdue": {"zh-CN": "逾期(元)", "en": "Overdue (yuan)"},
    "report_rate": {"zh-CN": "收缴率(%)", "en": "Collection rate (%)"},
    "report_total": {"zh-CN": "合计", "en": "Total"},
    "print_title": {"zh-CN": "缴费通知单", "en": "Bill"},
    "print_number": {"zh-CN": "账单号", "en": "Bill no."},
    "print_unit": {"zh-CN": "房号", "en": "Unit"},
    "print_owner": {"zh-CN": "业主", "en": "Owner"},
    "print_area": {"zh-CN": "建筑面积", "en": "Floor area"},
    "print_period": {"zh-CN": "账期", "en": "Period"},
    "print_issued": {"zh-CN": "出账日期", "en": "Issued"},
    "print_due": {"zh-CN": "缴费截止日", "en": "Due date"},
    "print_item": {"zh-CN": "项目", "en": "Item"},
    "print_readings": {"zh-CN": "读数 / 明细", "en": "Readings / detail"},
    "print_quantity": {"zh-CN": "用量", "en": "Quantity"},
    "print_unit_price": {"zh-CN": "单价(元)", "en": "Unit price (yuan)"},
    "print_amount": {"zh-CN": "金额(元)", "en": "Amount (yuan)"},
    "print_bill_total": {"zh-CN": "本期账单合计", "en": "Bill total"},
    "print_entries": {"zh-CN": "出账后调整", "en": "Changes after issue"},
    "print_entry_kind": {"zh-CN": "类型", "en": "Kind"},
    "print_entry_reason": {"zh-CN": "原因", "en": "Reason"},
    "print_entry_date": {"zh-CN": "生效日期", "en": "Effective"},
    "print_receivable": {"zh-CN": "应收合计", "en": "Receivable"},
    "print_waived": {"zh-CN": "减免", "en": "Waived"},
    "print_paid": {"zh-CN": "已缴", "en": "Paid"},
    "print_outstanding": {"zh-CN": "待缴", "en": "Outstanding"},
    "print_print": {"zh-CN": "打印", "en": "Print"},
    "print_kind_correction": {"zh-CN": "更正", "en": "Correction"},
    "print_kind_adjustment": {"zh-CN": "调整", "en": "Adjustment"},
    "print_kind_waiver": {"zh-CN": "减免", "en": "Waiver"},
    "print_kind_void": {"zh-CN": "作废", "en": "Void"},
    "print_kind_late_fee": {"zh-CN": "滞纳金", "en": "Late fee"},
    "print_kind_repair": {"zh-CN": "维修费", "en": "Repair"},
    "print_detail_start": {"zh-CN": "起", "en": "from"},
    "print_detail_end": {"zh-CN": "止", "en": "to"},
    "print_detail_tier": {"zh-CN": "档位", "en": "tier"},
    "print_detail_period": {"zh-CN": "时段", "en": "time of use"},
    "print_detail_usage": {"zh-CN": "用量", "en": "usage"},
    "print_detail_estimated": {"zh-CN": "估算", "en": "estimated"},
}
