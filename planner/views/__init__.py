"""Stage 6, what people read: text tables, markdown and plots of results."""
