"""Scanner driver: whole scans from a scan engine's character stream (serial port or keyboard
wedge, `devices.scanner.engine`, framed by `devices.scanner.framing`) and camera frames from a
file or a capture spool folder (`devices.scanner.camera`). No hub code: the agent submits what
this driver reads (devices/agent/scanning.py)."""
