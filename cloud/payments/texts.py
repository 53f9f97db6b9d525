"""Texts of the demo provider's checkout page (listed in ``cloud.console.i18n``, which imports this module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloud.console.i18n import Texts

TEXTS: Texts = {
    "pay_demo_title": {"zh-CN": "模拟支付（演示收银台）", "en": "Demo payment (simulated checkout)"},
    "pay_demo_notice": {
        "zh-CN": "这是演示支付服务商的页面，不会产生真实扣款。",
        "en": "This page simulates a payment provider; no real money moves.",
    },
    "pay_merchant": {"zh-CN": "收款方", "en": "Merchant"},
    "pay_amount": {"zh-CN": "支付金额", "en": "Amount"},
    "pay_bills": {"zh-CN": "账单数", "en": "Bills"},
    "pay_confirm": {"zh-CN": "确认支付", "en": "Confirm payment"},
    "pay_already_paid": {"zh-CN": "该订单已支付", "en": "This order is paid already"},
    "pay_back": {"zh-CN": "返回", "en": "Back"},
    "pay_failed": {"zh-CN": "支付未完成", "en": "The payment did not go through"},
}
