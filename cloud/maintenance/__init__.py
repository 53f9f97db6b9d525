"""Equipment maintenance (设备管理): inspection standards per equipment type, plans, and the tasks they generate."""
