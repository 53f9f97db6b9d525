"""Notifications to people (owners, technicians, staff): written in the caller's transaction, delivered later.

Domains call ``cloud.notify.services.notify``; a dispatcher delivers pending rows over the channels
(live push, MQTT, webhook, SMS). Writing first means a rolled-back change notifies no one, and a
committed one is never forgotten when a channel is down.
"""
