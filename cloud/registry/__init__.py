"""Asset registry: sites, buildings, units, meters, edges, devices, equipment, and which device point
feeds which meter or equipment (so every stored series has an owner)."""
