"""Running the daemon unattended: systemd notification, health, metrics and alerts.

Each module is small and takes its collaborators built; the CLI wires them.
"""
