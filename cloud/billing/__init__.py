"""Metered billing: tariffs, consumption, shared cost, bill runs, the ledger, and bills owners can check by hand.

Money is integer fen everywhere (``*_fen`` columns and fields); quantities are Decimal.
"""
