"""Roles and ticket kinds (SPEC §3, §6, §7), and which role works each kind."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PRESALE = "presale"  # 售前
    AFTERSALES = "aftersales"  # 售后
    WAREHOUSE = "warehouse"  # 仓库
    FINANCE = "finance"  # 财务
    SUPERVISOR = "supervisor"  # 组长 / 店长


class TicketKind(StrEnum):
    # pre-sale (§6)
    INQUIRY = "inquiry"  # 咨询
    UNPAID_REMINDER = "unpaid_reminder"  # 催付
    # after-sales (§7)
    LOGISTICS = "logistics"  # 物流查件
    URGE_SHIPMENT = "urge_shipment"  # 催发货
    ORDER_CHANGE = "order_change"  # 订单修改
    WRONG_ITEM = "wrong_item"  # 发错货 / 漏发
    QUALITY = "quality"  # 质量问题
    RETURN = "return"  # 退货
    EXCHANGE = "exchange"  # 换货
    COMPENSATION = "compensation"  # 补偿
    INVOICE = "invoice"  # 开票
    OUT_OF_STOCK = "out_of_stock"  # 缺货
    PLATFORM_COMPLAINT = "platform_complaint"  # 后台投诉 / 小二介入
    GENERAL_AFTERSALES = "general_aftersales"  # a paid order's question that fits no path yet


PRESALE_KINDS = frozenset({TicketKind.INQUIRY, TicketKind.UNPAID_REMINDER})


def role_for_kind(kind: TicketKind) -> Role:
    """The role whose queue a new ticket of this kind is routed to (§5.1)."""
    return Role.PRESALE if kind in PRESALE_KINDS else Role.AFTERSALES
