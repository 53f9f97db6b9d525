"""Payments: counter payments, online payments through a provider, settlement of bills, prepaid credit."""
