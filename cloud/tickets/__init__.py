"""Work orders (工单): tickets from alarms, owners, staff, patrols and maintenance; dispatch to technicians by
skill, zone, load and shift; SLA clocks with warnings and escalation; history, photos, materials and ratings.

Other domains call ``cloud.tickets.services``; background work (accept timeouts, SLA marks, retries of dispatch)
lives in ``cloud.tickets.timers``.
"""
