"""Modbus facts shared by the edge and the simulators: data types, wire timing, read planning."""
