"""The contract between edge and hub: topics, payloads, device profiles and Modbus codecs. No I/O here."""
