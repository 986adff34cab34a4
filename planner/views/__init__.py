"""What people read: text tables, markdown and plots of results."""
