"""Alarms in the hub: rules as data, evaluated on what ingest stores, with a lifecycle and tickets.

Faults become alarms (cloud.alarms.evaluator), one per asset and rule at a time; an alarm opens a ticket and
notifies the site's engineers, and clearing it tells the ticket. People acknowledge and list them through
cloud.alarms.routes.
"""
