"""Simulated device firmware: Modbus meters and sensors, serial lines with real wire timing, scanners.

The edge under test talks to these with its real Modbus client over real links (ptys and TCP sockets),
so everything between the register map and the bytes on the wire is exercised, faults included.

Layers, one job each:
  clock, load_shape, signals   what a healthy device reads over the day
  device                       SimulatedDevice: registers from a profile, fault state, read rules
  faults                       fault kinds and fault scenarios as data
  pdu, rtu_frames              Modbus PDUs and RTU framing on the slave side
  responder, line, rtu_link    the devices on one line, wire-time pacing, one RTU byte stream
  rtu_server, tcp_server       a bus on a pty; Modbus TCP or RTU-over-TCP on a port
  scanner                      a patrol-checkpoint barcode scanner on a pty
  site_config, site            a whole site from one YAML file, and the matching edge config
  control, cli                 `estatehub sim ...` and switching faults while it runs

Typical use (a test or a benchmark)::

    devices = [SimulatedDevice(load_profile("chint_ddsu666"), unit) for unit in range(1, 31)]
    with RtuServer(devices, LineTiming(9600, device_latency_s=0.02)) as bus:
        ...  # open bus.path with a serial Modbus client
        devices[3].set_fault(FaultKind.NO_RESPONSE)
"""
