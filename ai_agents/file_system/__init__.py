"""file_system."""
